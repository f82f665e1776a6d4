package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/sparekey/sparekey/internal/auth"
)

// Recovery code ids are stored as their 16 UUID bytes: ten per member, the prefix is constant.
const codeIDPrefix = "member-totp-recovery-code-test-"

func codeIDBytes(id string) ([]byte, error) {
	u, err := uuid.Parse(strings.TrimPrefix(id, codeIDPrefix))
	if err != nil || !strings.HasPrefix(id, codeIDPrefix) {
		return nil, fmt.Errorf("recovery code id %q is not %s<uuid>", id, codeIDPrefix)
	}
	return u[:], nil
}

func codeIDString(b []byte) (string, error) {
	u, err := uuid.FromBytes(b)
	if err != nil {
		return "", err
	}
	return codeIDPrefix + u.String(), nil
}

const totpColumns = `t.id, t.member_id, t.sealed_secret, t.sealed_codes, t.last_step, t.unspent_steps, t.created_at`

func scanTOTP(r scanner) (auth.TOTPRegistration, error) {
	var (
		reg     auth.TOTPRegistration
		unspent int64
		created sql.NullInt64
	)
	if err := r.Scan(&reg.ID, &reg.MemberID, &reg.SealedSecret, &reg.SealedCodes, &reg.LastStep, &unspent, &created); err != nil {
		return auth.TOTPRegistration{}, err
	}
	reg.UnspentSteps = uint64(unspent)
	reg.CreatedAt = fromUnix(created)
	return reg, nil
}

// codeRowsPerInsert bounds the rows of one code INSERT. A set (ten codes, an imported one at most
// twenty) goes in one statement, not one per code: inside the single writer's transaction every
// statement is time the other writers wait. Each row count is its own prepared statement.
const codeRowsPerInsert = 20

// codeInserts[n] is the INSERT of n codes.
var codeInserts = func() [codeRowsPerInsert + 1]string {
	var out [codeRowsPerInsert + 1]string
	for n := 1; n <= codeRowsPerInsert; n++ {
		out[n] = multiInsert(`INSERT INTO recovery_codes (registration_pk, mac, position, id, used_at)`, 5, n)
	}
	return out
}()

func insertCodes(ctx context.Context, tx *txn, regPK int64, codes []auth.RecoveryCode) error {
	for len(codes) > 0 {
		n := min(len(codes), codeRowsPerInsert)
		args := make([]any, 0, 5*n)
		for _, c := range codes[:n] {
			id, err := codeIDBytes(c.ID)
			if err != nil {
				return err
			}
			args = append(args, regPK, c.MAC, c.Position, id, unix(c.UsedAt))
		}
		if _, err := tx.exec(ctx, codeInserts[n], args...); err != nil {
			return err
		}
		codes = codes[n:]
	}
	return nil
}

func (db *DB) CreateTOTP(ctx context.Context, projectID string, reg auth.TOTPRegistration, codes []auth.RecoveryCode, events ...auth.Event) error {
	return db.tx(ctx, func(tx *txn) error {
		if _, err := member(ctx, tx, projectID, "", reg.MemberID); err != nil {
			return err
		}
		var n int
		if err := tx.queryRow(ctx, `SELECT count(*) FROM totp_registrations WHERE member_id = ?`, reg.MemberID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return auth.ErrActiveTOTPExists
		}
		var pk int64
		// SQLite integers are signed: the step bits are stored as the int64 of the same bits.
		if err := tx.queryRow(ctx, `INSERT INTO totp_registrations (id, member_id, sealed_secret, sealed_codes, last_step, unspent_steps, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING pk`,
			reg.ID, reg.MemberID, reg.SealedSecret, reg.SealedCodes, reg.LastStep, int64(reg.UnspentSteps), unix(reg.CreatedAt)).Scan(&pk); err != nil {
			return err
		}
		if err := insertCodes(ctx, tx, pk, codes); err != nil {
			return err
		}
		return insertEvents(ctx, tx, events)
	})
}

func (db *DB) TOTP(ctx context.Context, projectID, memberID string) (auth.TOTPRegistration, error) {
	reg, err := scanTOTP(db.read.queryRow(ctx, `SELECT `+totpColumns+` FROM totp_registrations t JOIN members m ON m.id = t.member_id WHERE t.member_id = ? AND m.project_id = ?`, memberID, projectID))
	if errors.Is(err, sql.ErrNoRows) {
		return auth.TOTPRegistration{}, auth.ErrTOTPNotFound
	}
	return reg, err
}

func (db *DB) DeleteTOTP(ctx context.Context, projectID, memberID string, apply func(*auth.Member) ([]auth.Event, error)) (auth.Member, error) {
	var out auth.Member
	err := db.tx(ctx, func(tx *txn) error {
		m, err := member(ctx, tx, projectID, "", memberID)
		if err != nil {
			return err
		}
		res, err := tx.exec(ctx, `DELETE FROM totp_registrations WHERE member_id = ?`, memberID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return auth.ErrTOTPNotFound
		}
		events, err := apply(&m)
		if err != nil {
			return err
		}
		out = m
		if err := saveMember(ctx, tx, &m); err != nil {
			return err
		}
		return insertEvents(ctx, tx, events)
	})
	return out, err
}

// registrationPK finds the internal key of a registration of the project.
const registrationPK = `SELECT t.pk FROM totp_registrations t JOIN members m ON m.id = t.member_id WHERE t.id = ? AND m.project_id = ?`

func scanCodes(rows *sql.Rows) ([]auth.RecoveryCode, error) {
	defer rows.Close()
	var out []auth.RecoveryCode
	for rows.Next() {
		var (
			c    auth.RecoveryCode
			id   []byte
			used sql.NullInt64
		)
		if err := rows.Scan(&c.MAC, &c.Position, &id, &used); err != nil {
			return nil, err
		}
		var err error
		if c.ID, err = codeIDString(id); err != nil {
			return nil, err
		}
		c.UsedAt = fromUnix(used)
		out = append(out, c)
	}
	return out, rows.Err()
}

// RecoveryCodes reads the sealed set and its rows in one statement, so in one snapshot.
func (db *DB) RecoveryCodes(ctx context.Context, projectID, registrationID string) ([]byte, []auth.RecoveryCode, error) {
	rows, err := db.read.query(ctx, `SELECT t.sealed_codes, c.mac, c.position, c.id, c.used_at
		FROM totp_registrations t JOIN members m ON m.id = t.member_id
		LEFT JOIN recovery_codes c ON c.registration_pk = t.pk
		WHERE t.id = ? AND m.project_id = ? ORDER BY c.position`,
		registrationID, projectID)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var (
		sealed []byte
		codes  []auth.RecoveryCode
	)
	for rows.Next() {
		var (
			mac, id  []byte
			position sql.NullInt64
			used     sql.NullInt64
		)
		if err := rows.Scan(&sealed, &mac, &position, &id, &used); err != nil {
			return nil, nil, err
		}
		if mac == nil {
			continue // a registration without codes: the LEFT JOIN's empty row
		}
		cid, err := codeIDString(id)
		if err != nil {
			return nil, nil, err
		}
		codes = append(codes, auth.RecoveryCode{ID: cid, Position: int(position.Int64), MAC: mac, UsedAt: fromUnix(used)})
	}
	return sealed, codes, rows.Err()
}

func (db *DB) FindRecoveryCode(ctx context.Context, projectID, registrationID string, mac []byte) (auth.RecoveryCode, error) {
	rows, err := db.read.query(ctx, `SELECT c.mac, c.position, c.id, c.used_at FROM recovery_codes c WHERE c.registration_pk = (`+registrationPK+`) AND c.mac = ?`,
		registrationID, projectID, mac)
	if err != nil {
		return auth.RecoveryCode{}, err
	}
	codes, err := scanCodes(rows)
	if err != nil {
		return auth.RecoveryCode{}, err
	}
	if len(codes) == 0 {
		return auth.RecoveryCode{}, auth.ErrRecoveryCodeRejected
	}
	return codes[0], nil
}

// ReplaceRecoveryCodes is four statements: the registration's new sealed set, which also finds it
// (and its key) in the project; the old codes out; the new codes in; the events.
func (db *DB) ReplaceRecoveryCodes(ctx context.Context, projectID, registrationID string, sealedSet []byte, codes []auth.RecoveryCode, events ...auth.Event) error {
	return db.tx(ctx, func(tx *txn) error {
		var pk int64
		err := tx.queryRow(ctx, `UPDATE totp_registrations SET sealed_codes = ? WHERE id = ?
			AND EXISTS (SELECT 1 FROM members m WHERE m.id = totp_registrations.member_id AND m.project_id = ?) RETURNING pk`,
			sealedSet, registrationID, projectID).Scan(&pk)
		if errors.Is(err, sql.ErrNoRows) {
			return auth.ErrTOTPNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM recovery_codes WHERE registration_pk = ?`, pk); err != nil {
			return err
		}
		if err := insertCodes(ctx, tx, pk, codes); err != nil {
			return err
		}
		return insertEvents(ctx, tx, events)
	})
}

// codeOwnerQuery is Store.CodeOwner in one statement, so in one snapshot. The organization is
// resolved as organization() does (id, then slug, then external id: coalesce stops at the first
// that matches) and so is the member inside it (id, then external id); every other row hangs off
// them by a LEFT JOIN, NULL when absent. No organization: no row.
//
// ?1 project, ?2 organization ref, ?3 member ref, ?4 whether to list the unused positions,
// ?5 code MAC (NULL: none), ?6 intermediate session digest (NULL: none), ?7 now.
const codeOwnerQuery = `SELECT ` + orgColumns + `,
	m.id, m.organization_id, m.project_id, m.email, m.external_id, m.status, m.profile,
	m.failed_attempts, m.lock_created_at, m.lock_expires_at, m.created_at, m.updated_at,
	(SELECT p.id FROM passwords p WHERE p.member_id = m.id),
	t.id, t.sealed_secret, t.sealed_codes, t.last_step, t.unspent_steps, t.created_at,
	CASE WHEN ?4 THEN (SELECT group_concat(u.position) FROM recovery_codes u
		WHERE u.registration_pk = t.pk AND u.used_at IS NULL) END,
	c.id, c.position, c.used_at,
	i.organization_id, i.member_id, i.factors, i.created_at, i.expires_at
FROM organizations o
LEFT JOIN members m ON m.id = coalesce(
	(SELECT x.id FROM members x WHERE x.id = ?3 AND x.organization_id = o.id AND x.project_id = ?1),
	(SELECT x.id FROM members x WHERE x.organization_id = o.id AND x.external_id = ?3 AND x.project_id = ?1))
LEFT JOIN totp_registrations t ON t.member_id = m.id
LEFT JOIN recovery_codes c ON c.registration_pk = t.pk AND c.mac = ?5
LEFT JOIN intermediate_sessions i ON i.token_digest = ?6 AND i.project_id = ?1 AND i.expires_at > ?7
WHERE o.id = coalesce(
	(SELECT x.id FROM organizations x WHERE x.project_id = ?1 AND x.id = ?2),
	(SELECT x.id FROM organizations x WHERE x.project_id = ?1 AND x.slug = ?2),
	(SELECT x.id FROM organizations x WHERE x.project_id = ?1 AND x.external_id = ?2))`

func (db *DB) CodeOwner(ctx context.Context, projectID string, q auth.CodeOwnerQuery) (auth.CodeOwner, error) {
	return scanCodeOwner(db.read.queryRow(ctx, codeOwnerQuery, codeOwnerArgs(projectID, q)...), projectID, q)
}

// RecordedCodeOwner reads on the write connection, whose page cache the store's own commits
// keep valid, rather than on a read connection, which starts cold after every commit.
func (db *DB) RecordedCodeOwner(ctx context.Context, projectID string, q auth.CodeOwnerQuery, record func(auth.CodeOwner) ([]auth.Event, error)) (auth.CodeOwner, error) {
	var out auth.CodeOwner
	err := db.tx(ctx, func(tx *txn) error {
		owner, err := scanCodeOwner(tx.queryRow(ctx, codeOwnerQuery, codeOwnerArgs(projectID, q)...), projectID, q)
		if err != nil {
			return err
		}
		events, err := record(owner)
		if err != nil {
			return err
		}
		out = owner
		return insertEvents(ctx, tx, events)
	})
	return out, err
}

func codeOwnerArgs(projectID string, q auth.CodeOwnerQuery) []any {
	return []any{projectID, q.OrganizationRef, q.MemberRef, q.UnusedCodes, q.CodeMAC, q.ISTDigest, q.Now.Unix()}
}

func scanCodeOwner(row *sql.Row, projectID string, q auth.CodeOwnerQuery) (auth.CodeOwner, error) {
	var (
		out                                           auth.CodeOwner
		mID, mOrg, mProject, mEmail, mExt, mStatus    sql.NullString
		mProfile, passwordID                          sql.NullString
		mFailed, lockCreated, lockExpires, crt, updtd sql.NullInt64
		tID                                           sql.NullString
		sealedSecret, sealedCodes                     []byte
		lastStep, unspent, tCreated                   sql.NullInt64
		unused                                        sql.NullString
		codeID                                        []byte
		codePosition, codeUsed                        sql.NullInt64
		iOrg, iMember, iFactors                       sql.NullString
		iCreated, iExpires                            sql.NullInt64
	)
	org, err := scanOrganization(row,
		&mID, &mOrg, &mProject, &mEmail, &mExt, &mStatus, &mProfile, &mFailed, &lockCreated, &lockExpires, &crt, &updtd, &passwordID,
		&tID, &sealedSecret, &sealedCodes, &lastStep, &unspent, &tCreated,
		&unused,
		&codeID, &codePosition, &codeUsed,
		&iOrg, &iMember, &iFactors, &iCreated, &iExpires)
	if errors.Is(err, sql.ErrNoRows) {
		return out, auth.ErrOrganizationNotFound
	}
	if err != nil {
		return out, err
	}
	if !mID.Valid {
		return out, auth.ErrMemberNotFound
	}
	out.Organization = org
	m := auth.Member{
		ID: mID.String, OrganizationID: mOrg.String, ProjectID: mProject.String, EmailAddress: mEmail.String,
		ExternalID: mExt.String, Status: mStatus.String, TOTPRegistrationID: tID.String, PasswordID: passwordID.String,
		FailedAttempts: int(mFailed.Int64), LockCreatedAt: fromUnix(lockCreated), LockExpiresAt: fromUnix(lockExpires),
		CreatedAt: fromUnix(crt), UpdatedAt: fromUnix(updtd),
	}
	if err := decodeStored(mProfile.String, &m.MemberProfile); err != nil {
		return out, err
	}
	out.Member = m
	if tID.Valid {
		out.Registration = &auth.TOTPRegistration{
			ID: tID.String, MemberID: m.ID, SealedSecret: sealedSecret, SealedCodes: sealedCodes,
			LastStep: lastStep.Int64, UnspentSteps: uint64(unspent.Int64), CreatedAt: fromUnix(tCreated),
		}
		if q.UnusedCodes {
			out.UnusedPositions = []int{}
			for p := range strings.SplitSeq(unused.String, ",") {
				if p == "" {
					continue
				}
				n, err := strconv.Atoi(p)
				if err != nil {
					return out, fmt.Errorf("unused code positions %q: %w", unused.String, err)
				}
				out.UnusedPositions = append(out.UnusedPositions, n)
			}
			slices.Sort(out.UnusedPositions) // sorted here: in SQL it would take a temporary b-tree
		}
	}
	if codeID != nil {
		id, err := codeIDString(codeID)
		if err != nil {
			return out, err
		}
		out.Code = &auth.RecoveryCode{ID: id, Position: int(codePosition.Int64), MAC: q.CodeMAC, UsedAt: fromUnix(codeUsed)}
	}
	if iMember.Valid {
		ist := auth.IntermediateSession{
			TokenDigest: q.ISTDigest, ProjectID: projectID, OrganizationID: iOrg.String, MemberID: iMember.String,
			CreatedAt: fromUnix(iCreated), ExpiresAt: fromUnix(iExpires),
		}
		if err := decodeStored(iFactors.String, &ist.Factors); err != nil {
			return out, err
		}
		out.IST = &ist
	}
	return out, nil
}

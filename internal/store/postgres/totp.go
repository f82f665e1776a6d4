package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sparekey/sparekey/internal/auth"
)

// Recovery code ids are stored as their UUID (16 bytes): ten per member, the prefix is constant.
const codeIDPrefix = "member-totp-recovery-code-test-"

func codeUUID(id string) (pgtype.UUID, error) {
	u, err := uuid.Parse(strings.TrimPrefix(id, codeIDPrefix))
	if err != nil || !strings.HasPrefix(id, codeIDPrefix) {
		return pgtype.UUID{}, fmt.Errorf("recovery code id %q is not %s<uuid>", id, codeIDPrefix)
	}
	return pgtype.UUID{Bytes: u, Valid: true}, nil
}

func codeIDString(u pgtype.UUID) string { return codeIDPrefix + uuid.UUID(u.Bytes).String() }

// codeArrays lays a code set out as parallel arrays, so one INSERT … SELECT FROM unnest(…) writes
// the whole set in one statement.
type codeArrays struct {
	macs      [][]byte
	positions []int32
	ids       []pgtype.UUID
	usedAt    []pgtype.Timestamptz
}

func newCodeArrays(codes []auth.RecoveryCode) (codeArrays, error) {
	a := codeArrays{
		macs:      make([][]byte, len(codes)),
		positions: make([]int32, len(codes)),
		ids:       make([]pgtype.UUID, len(codes)),
		usedAt:    make([]pgtype.Timestamptz, len(codes)),
	}
	for i, c := range codes {
		id, err := codeUUID(c.ID)
		if err != nil {
			return codeArrays{}, err
		}
		a.macs[i], a.positions[i], a.ids[i] = c.MAC, int32(c.Position), id
		if !c.UsedAt.IsZero() {
			a.usedAt[i] = pgtype.Timestamptz{Time: at(c.UsedAt), Valid: true}
		}
	}
	return a, nil
}

const totpColumns = `t.id, t.member_id, t.sealed_secret, t.sealed_codes, t.last_step, t.unspent_steps, t.created_at`

func scanTOTP(r scanner) (auth.TOTPRegistration, error) {
	var (
		reg     auth.TOTPRegistration
		unspent int64
		created pgtype.Timestamptz
	)
	if err := r.Scan(&reg.ID, &reg.MemberID, &reg.SealedSecret, &reg.SealedCodes, &reg.LastStep, &unspent, &created); err != nil {
		return auth.TOTPRegistration{}, err
	}
	reg.UnspentSteps = uint64(unspent)
	reg.CreatedAt = fromTS(created)
	return reg, nil
}

// CreateTOTP writes the registration, its codes and the events in one statement, and only for a
// member of the project; the unique constraint on member_id refuses a second registration, also
// under a race.
func (db *DB) CreateTOTP(ctx context.Context, projectID string, reg auth.TOTPRegistration, codes []auth.RecoveryCode, events ...auth.Event) error {
	if !storable(reg.MemberID) {
		return auth.ErrMemberNotFound
	}
	a, err := newCodeArrays(codes)
	if err != nil {
		return err
	}
	ev, err := newEventArrays(events)
	if err != nil {
		return err
	}
	// bigint is signed: the step bits are stored as the int64 of the same bits.
	args := append([]any{reg.ID, reg.MemberID, reg.SealedSecret, reg.SealedCodes, reg.LastStep, ts(reg.CreatedAt), projectID,
		a.macs, a.positions, a.ids, a.usedAt, int64(reg.UnspentSteps)}, ev.args()...)
	return db.retry(ctx, func() error {
		var n int
		err := db.pool.QueryRow(ctx, createTOTP, args...).Scan(&n)
		if err != nil {
			return err
		}
		if n != 1 {
			return auth.ErrMemberNotFound
		}
		return nil
	})
}

func (db *DB) TOTP(ctx context.Context, projectID, memberID string) (auth.TOTPRegistration, error) {
	if !storable(memberID) {
		return auth.TOTPRegistration{}, auth.ErrTOTPNotFound
	}
	reg, err := scanTOTP(db.pool.QueryRow(ctx, `SELECT `+totpColumns+` FROM totp_registrations t JOIN members m ON m.id = t.member_id WHERE t.member_id = $1 AND m.project_id = $2`, memberID, projectID))
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.TOTPRegistration{}, auth.ErrTOTPNotFound
	}
	return reg, err
}

// DeleteTOTP locks the member, deletes the registration (its codes cascade) and saves the member
// as apply leaves it, with apply's events.
func (db *DB) DeleteTOTP(ctx context.Context, projectID, memberID string, apply func(*auth.Member) ([]auth.Event, error)) (auth.Member, error) {
	if !storable(memberID) {
		return auth.Member{}, auth.ErrMemberNotFound
	}
	var out auth.Member
	err := db.tx(ctx, func(tx *txn) error {
		var m auth.Member
		b := &pgx.Batch{}
		queueMemberForEdit(tx, b, projectID, memberID, &m)
		b.Queue(`DELETE FROM totp_registrations t USING members m WHERE t.member_id = $1 AND m.id = t.member_id AND m.project_id = $2`,
			memberID, projectID).Exec(func(tag pgconn.CommandTag) error {
			if tag.RowsAffected() != 1 {
				return tx.refuse(auth.ErrTOTPNotFound)
			}
			return nil
		})
		if err := tx.send(ctx, b); err != nil {
			return err
		}
		events, err := apply(&m)
		if err != nil {
			return err
		}
		b = &pgx.Batch{}
		if err := queueSaveMember(b, &m); err != nil {
			return err
		}
		if err := queueEvents(b, events); err != nil {
			return err
		}
		if err := tx.commitWith(ctx, b); err != nil {
			return err
		}
		out = m
		return nil
	})
	return out, err
}

// registrationPK finds the internal key of a registration of the project ($1 id, $2 project).
const registrationPK = `SELECT t.pk FROM totp_registrations t JOIN members m ON m.id = t.member_id WHERE t.id = $1 AND m.project_id = $2`

// createTOTP inserts a registration for a member of the project, its codes, and its events
// (guarded by the registration: no member, no events).
var createTOTP = `WITH reg AS (
		INSERT INTO totp_registrations (id, member_id, sealed_secret, sealed_codes, last_step, unspent_steps, created_at)
		SELECT $1, m.id, $3, $4, $5, $12, $6 FROM members m WHERE m.id = $2 AND m.project_id = $7
		RETURNING pk
	), codes AS (
		INSERT INTO recovery_codes (registration_pk, mac, position, id, used_at)
		SELECT reg.pk, c.mac, c.position, c.id, c.used_at
		FROM reg, unnest($8::bytea[], $9::int[], $10::uuid[], $11::timestamptz[]) AS c (mac, position, id, used_at)
	), ev AS (
		` + insertEventsFrom("reg", 13) + `
	)
	SELECT count(*) FROM reg`

// replaceCodeEvents records a rotation's events only when the registration exists.
var replaceCodeEvents = insertEventsFrom(`(`+registrationPK+`) r`, 3)

func scanCodes(rows pgx.Rows) ([]auth.RecoveryCode, error) {
	defer rows.Close()
	var out []auth.RecoveryCode
	for rows.Next() {
		var (
			c    auth.RecoveryCode
			id   pgtype.UUID
			used pgtype.Timestamptz
		)
		if err := rows.Scan(&c.MAC, &c.Position, &id, &used); err != nil {
			return nil, err
		}
		c.ID, c.UsedAt = codeIDString(id), fromTS(used)
		out = append(out, c)
	}
	return out, rows.Err()
}

// RecoveryCodes reads the sealed set and its rows in one statement, so in one snapshot.
func (db *DB) RecoveryCodes(ctx context.Context, projectID, registrationID string) ([]byte, []auth.RecoveryCode, error) {
	if !storable(projectID, registrationID) {
		return nil, nil, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT t.sealed_codes, c.mac, c.position, c.id, c.used_at
		FROM totp_registrations t JOIN members m ON m.id = t.member_id
		LEFT JOIN recovery_codes c ON c.registration_pk = t.pk
		WHERE t.id = $1 AND m.project_id = $2 ORDER BY c.position`,
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
			mac      []byte
			position pgtype.Int4
			id       pgtype.UUID
			used     pgtype.Timestamptz
		)
		if err := rows.Scan(&sealed, &mac, &position, &id, &used); err != nil {
			return nil, nil, err
		}
		if mac == nil {
			continue // a registration without codes: the LEFT JOIN's empty row
		}
		codes = append(codes, auth.RecoveryCode{ID: codeIDString(id), Position: int(position.Int32), MAC: mac, UsedAt: fromTS(used)})
	}
	return sealed, codes, rows.Err()
}

// FindRecoveryCode is one primary-key probe: (registration, MAC).
func (db *DB) FindRecoveryCode(ctx context.Context, projectID, registrationID string, mac []byte) (auth.RecoveryCode, error) {
	if !storable(registrationID) {
		return auth.RecoveryCode{}, auth.ErrRecoveryCodeRejected
	}
	rows, err := db.pool.Query(ctx, `SELECT c.mac, c.position, c.id, c.used_at FROM recovery_codes c WHERE c.registration_pk = (`+registrationPK+`) AND c.mac = $3`,
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

// ReplaceRecoveryCodes runs in one round trip with its commit. The UPDATE comes first: it finds
// the registration (or refuses, and then the DELETE and the INSERTs of codes and events, scoped
// the same way, touch nothing) and locks it, so two rotations of one set apply one after the other. A recover racing
// a rotation either spends its code before the DELETE removes it or finds it gone.
func (db *DB) ReplaceRecoveryCodes(ctx context.Context, projectID, registrationID string, sealedSet []byte, codes []auth.RecoveryCode, events ...auth.Event) error {
	if !storable(registrationID) {
		return auth.ErrTOTPNotFound
	}
	a, err := newCodeArrays(codes)
	if err != nil {
		return err
	}
	ev, err := newEventArrays(events)
	if err != nil {
		return err
	}
	return db.tx(ctx, func(tx *txn) error {
		b := &pgx.Batch{}
		b.Queue(`UPDATE totp_registrations t SET sealed_codes = $3 FROM members m WHERE m.id = t.member_id AND t.id = $1 AND m.project_id = $2`,
			registrationID, projectID, sealedSet).Exec(func(tag pgconn.CommandTag) error {
			if tag.RowsAffected() != 1 {
				return tx.refuse(auth.ErrTOTPNotFound)
			}
			return nil
		})
		b.Queue(`DELETE FROM recovery_codes WHERE registration_pk = (`+registrationPK+`)`, registrationID, projectID)
		b.Queue(`INSERT INTO recovery_codes (registration_pk, mac, position, id, used_at)
			SELECT r.pk, c.mac, c.position, c.id, c.used_at
			FROM (`+registrationPK+`) r, unnest($3::bytea[], $4::int[], $5::uuid[], $6::timestamptz[]) AS c (mac, position, id, used_at)`,
			registrationID, projectID, a.macs, a.positions, a.ids, a.usedAt)
		if len(events) > 0 {
			b.Queue(replaceCodeEvents, append([]any{registrationID, projectID}, ev.args()...)...)
		}
		return tx.commitWith(ctx, b)
	})
}

// codeOwner is Store.CodeOwner in one statement, so in one snapshot: the organization resolved as
// organizationByRef resolves it, the member inside it as memberByRef does, and every other row
// hanging off them by a LEFT JOIN, NULL when absent. No organization: no row.
//
// $1 project, $2 organization ref, $3 member ref, $4 whether to list the unused positions,
// $5 code MAC (NULL: none), $6 intermediate session digest (NULL: none), $7 now.
const codeOwner = `SELECT ` + orgColumns + `,
	m.id, m.organization_id, m.project_id, m.email, m.external_id, m.status, m.profile,
	m.failed_attempts, m.lock_created_at, m.lock_expires_at, m.created_at, m.updated_at,
	(SELECT p.id FROM passwords p WHERE p.member_id = m.id),
	t.id, t.sealed_secret, t.sealed_codes, t.last_step, t.unspent_steps, t.created_at,
	CASE WHEN $4::boolean THEN (SELECT array_agg(u.position::integer ORDER BY u.position) FROM recovery_codes u
		WHERE u.registration_pk = t.pk AND u.used_at IS NULL) END,
	c.id, c.position, c.used_at,
	i.organization_id, i.member_id, i.factors, i.created_at, i.expires_at
FROM (
	SELECT 1 AS rank, * FROM organizations WHERE project_id = $1 AND id = $2
	UNION ALL SELECT 2, * FROM organizations WHERE project_id = $1 AND slug = $2
	UNION ALL SELECT 3, * FROM organizations WHERE project_id = $1 AND external_id = $2
	ORDER BY rank LIMIT 1
) o
LEFT JOIN LATERAL (
	SELECT * FROM (
		SELECT 1 AS rank, * FROM members WHERE id = $3 AND organization_id = o.id AND project_id = $1
		UNION ALL SELECT 2, * FROM members WHERE organization_id = o.id AND external_id = $3 AND project_id = $1
	) r ORDER BY r.rank LIMIT 1
) m ON true
LEFT JOIN totp_registrations t ON t.member_id = m.id
LEFT JOIN recovery_codes c ON c.registration_pk = t.pk AND c.mac = $5
LEFT JOIN intermediate_sessions i ON i.token_digest = $6 AND i.project_id = $1 AND i.expires_at > $7`

func (db *DB) CodeOwner(ctx context.Context, projectID string, q auth.CodeOwnerQuery) (auth.CodeOwner, error) {
	args, err := codeOwnerArgs(projectID, q)
	if err != nil {
		return auth.CodeOwner{}, err
	}
	return scanCodeOwner(db.pool.QueryRow(ctx, codeOwner, args...), projectID, q)
}

// RecordedCodeOwner takes two round trips, as a read and then an insert would: BEGIN with the
// read, then the events with the COMMIT.
func (db *DB) RecordedCodeOwner(ctx context.Context, projectID string, q auth.CodeOwnerQuery, record func(auth.CodeOwner) ([]auth.Event, error)) (auth.CodeOwner, error) {
	args, err := codeOwnerArgs(projectID, q)
	if err != nil {
		return auth.CodeOwner{}, err
	}
	var out auth.CodeOwner
	err = db.tx(ctx, func(tx *txn) error {
		var owner auth.CodeOwner
		b := &pgx.Batch{}
		b.Queue(codeOwner, args...).QueryRow(func(row pgx.Row) error {
			var err error
			owner, err = scanCodeOwner(row, projectID, q)
			return tx.refuse(err)
		})
		if err := tx.send(ctx, b); err != nil {
			return err
		}
		events, err := record(owner)
		if err != nil {
			return err
		}
		b = &pgx.Batch{}
		if err := queueEvents(b, events); err != nil {
			return err
		}
		if err := tx.commitWith(ctx, b); err != nil {
			return err
		}
		out = owner
		return nil
	})
	return out, err
}

// codeOwnerArgs are codeOwner's parameters, or ErrOrganizationNotFound when q's organization
// cannot be stored (so no row holds it).
func codeOwnerArgs(projectID string, q auth.CodeOwnerQuery) ([]any, error) {
	if !storable(projectID, q.OrganizationRef) {
		return nil, auth.ErrOrganizationNotFound
	}
	memberRef := q.MemberRef
	if !storable(memberRef) {
		memberRef = "" // names no member: ids are never empty, and an empty external id is NULL
	}
	return []any{projectID, q.OrganizationRef, memberRef, q.UnusedCodes, q.CodeMAC, q.ISTDigest, at(q.Now)}, nil
}

func scanCodeOwner(row pgx.Row, projectID string, q auth.CodeOwnerQuery) (auth.CodeOwner, error) {
	var out auth.CodeOwner
	var (
		o                                          auth.Organization
		oExt                                       pgtype.Text
		settings, metadata                         []byte
		oCreated, oUpdated                         pgtype.Timestamptz
		mID, mOrg, mProject, mEmail, mExt, mStatus pgtype.Text
		mProfile                                   []byte
		passwordID                                 pgtype.Text
		mFailed                                    pgtype.Int4
		lockCreated, lockExpires, crt, updtd       pgtype.Timestamptz
		tID                                        pgtype.Text
		sealedSecret, sealedCodes                  []byte
		lastStep, unspent                          pgtype.Int8
		tCreated                                   pgtype.Timestamptz
		unused                                     []int32
		codeID                                     pgtype.UUID
		codePosition                               pgtype.Int2
		codeUsed                                   pgtype.Timestamptz
		iOrg, iMember                              pgtype.Text
		iFactors                                   []byte
		iCreated, iExpires                         pgtype.Timestamptz
	)
	err := row.Scan(
		&o.ID, &o.ProjectID, &o.Name, &o.Slug, &oExt, &settings, &metadata, &oCreated, &oUpdated,
		&mID, &mOrg, &mProject, &mEmail, &mExt, &mStatus, &mProfile, &mFailed, &lockCreated, &lockExpires, &crt, &updtd, &passwordID,
		&tID, &sealedSecret, &sealedCodes, &lastStep, &unspent, &tCreated,
		&unused,
		&codeID, &codePosition, &codeUsed,
		&iOrg, &iMember, &iFactors, &iCreated, &iExpires)
	if errors.Is(err, pgx.ErrNoRows) {
		return out, auth.ErrOrganizationNotFound
	}
	if err != nil {
		return out, err
	}
	if err := json.Unmarshal(settings, &o.OrganizationSettings); err != nil {
		return out, err
	}
	if err := json.Unmarshal(metadata, &o.TrustedMetadata); err != nil {
		return out, err
	}
	o.ExternalID, o.CreatedAt, o.UpdatedAt = oExt.String, fromTS(oCreated), fromTS(oUpdated)
	out.Organization = o
	if !mID.Valid {
		return out, auth.ErrMemberNotFound
	}
	m := auth.Member{
		ID: mID.String, OrganizationID: mOrg.String, ProjectID: mProject.String, EmailAddress: mEmail.String,
		ExternalID: mExt.String, Status: mStatus.String, TOTPRegistrationID: tID.String, PasswordID: passwordID.String,
		FailedAttempts: int(mFailed.Int32), LockCreatedAt: fromTS(lockCreated), LockExpiresAt: fromTS(lockExpires),
		CreatedAt: fromTS(crt), UpdatedAt: fromTS(updtd),
	}
	if err := json.Unmarshal(mProfile, &m.MemberProfile); err != nil {
		return out, err
	}
	out.Member = m
	if tID.Valid {
		out.Registration = &auth.TOTPRegistration{
			ID: tID.String, MemberID: m.ID, SealedSecret: sealedSecret, SealedCodes: sealedCodes,
			LastStep: lastStep.Int64, UnspentSteps: uint64(unspent.Int64), CreatedAt: fromTS(tCreated),
		}
		if q.UnusedCodes {
			out.UnusedPositions = make([]int, len(unused))
			for i, p := range unused {
				out.UnusedPositions[i] = int(p)
			}
		}
	}
	if codeID.Valid {
		out.Code = &auth.RecoveryCode{ID: codeIDString(codeID), Position: int(codePosition.Int16), MAC: q.CodeMAC, UsedAt: fromTS(codeUsed)}
	}
	if iMember.Valid {
		ist := auth.IntermediateSession{
			TokenDigest: q.ISTDigest, ProjectID: projectID, OrganizationID: iOrg.String, MemberID: iMember.String,
			CreatedAt: fromTS(iCreated), ExpiresAt: fromTS(iExpires),
		}
		if err := json.Unmarshal(iFactors, &ist.Factors); err != nil {
			return out, err
		}
		out.IST = &ist
	}
	return out, nil
}

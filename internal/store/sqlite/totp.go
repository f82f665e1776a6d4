package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

func insertCodes(ctx context.Context, tx *txn, regPK int64, codes []auth.RecoveryCode) error {
	for _, c := range codes {
		id, err := codeIDBytes(c.ID)
		if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO recovery_codes (registration_pk, mac, position, id, used_at) VALUES (?, ?, ?, ?, ?)`,
			regPK, c.MAC, c.Position, id, unix(c.UsedAt)); err != nil {
			return err
		}
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

func (db *DB) ReplaceRecoveryCodes(ctx context.Context, projectID, registrationID string, sealedSet []byte, codes []auth.RecoveryCode, events ...auth.Event) error {
	return db.tx(ctx, func(tx *txn) error {
		var pk int64
		err := tx.queryRow(ctx, registrationPK, registrationID, projectID).Scan(&pk)
		if errors.Is(err, sql.ErrNoRows) {
			return auth.ErrTOTPNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM recovery_codes WHERE registration_pk = ?`, pk); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE totp_registrations SET sealed_codes = ? WHERE pk = ?`, sealedSet, pk); err != nil {
			return err
		}
		if err := insertCodes(ctx, tx, pk, codes); err != nil {
			return err
		}
		return insertEvents(ctx, tx, events)
	})
}

package postgres

import (
	"context"
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

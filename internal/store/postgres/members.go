package postgres

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sparekey/sparekey/internal/auth"
)

// memberColumns reads a member with the ids of its registration and password, which live in
// their own tables so deleting them needs no member write.
const memberColumns = `m.id, m.organization_id, m.project_id, m.email, m.external_id, m.status, m.profile,
	m.failed_attempts, m.lock_created_at, m.lock_expires_at, m.created_at, m.updated_at,
	(SELECT t.id FROM totp_registrations t WHERE t.member_id = m.id),
	(SELECT p.id FROM passwords p WHERE p.member_id = m.id)`

func scanMember(r scanner) (auth.Member, error) {
	var (
		m                                    auth.Member
		extID, totpID, passwordID            pgtype.Text
		profile                              []byte
		lockCreated, lockExpires, crt, updtd pgtype.Timestamptz
	)
	if err := r.Scan(&m.ID, &m.OrganizationID, &m.ProjectID, &m.EmailAddress, &extID, &m.Status, &profile,
		&m.FailedAttempts, &lockCreated, &lockExpires, &crt, &updtd, &totpID, &passwordID); err != nil {
		return auth.Member{}, err
	}
	if err := json.Unmarshal(profile, &m.MemberProfile); err != nil {
		return auth.Member{}, err
	}
	m.ExternalID, m.TOTPRegistrationID, m.PasswordID = extID.String, totpID.String, passwordID.String
	m.LockCreatedAt, m.LockExpiresAt = fromTS(lockCreated), fromTS(lockExpires)
	m.CreatedAt, m.UpdatedAt = fromTS(crt), fromTS(updtd)
	return m, nil
}

// Member lookups. By ref inside an organization: the id, then the external id, in one round trip.
const (
	memberByID        = `SELECT ` + memberColumns + ` FROM members m WHERE m.id = $1 AND m.project_id = $2`
	memberByIDForEdit = memberByID + ` FOR UPDATE OF m`
	memberByRef       = `SELECT ` + memberColumns + ` FROM (
		SELECT 1 AS rank, * FROM members WHERE id = $1 AND organization_id = $2 AND project_id = $3
		UNION ALL SELECT 2, * FROM members WHERE organization_id = $2 AND external_id = $1 AND project_id = $3
	) m ORDER BY m.rank LIMIT 1`
	memberByEmail = `SELECT ` + memberColumns + ` FROM members m WHERE m.organization_id = $1 AND m.email = $2 AND m.project_id = $3`
)

// memberResult scans a member lookup, answering ErrMemberNotFound for no row.
func memberResult(row pgx.Row) (auth.Member, error) {
	m, err := scanMember(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.Member{}, auth.ErrMemberNotFound
	}
	return m, err
}

// queueMemberForEdit queues the locked read of a member that a transaction will write: the row
// lock makes concurrent read-modify-writes of one member (failed attempts above all) queue up
// instead of overwriting each other.
func queueMemberForEdit(tx *txn, b *pgx.Batch, projectID, memberID string, m *auth.Member) {
	b.Queue(memberByIDForEdit, memberID, projectID).QueryRow(func(row pgx.Row) error {
		var err error
		*m, err = memberResult(row)
		return tx.refuse(err)
	})
}

func (db *DB) Member(ctx context.Context, projectID, organizationID, ref string) (auth.Member, error) {
	if !storable(organizationID, ref) {
		return auth.Member{}, auth.ErrMemberNotFound
	}
	if organizationID == "" {
		return memberResult(db.pool.QueryRow(ctx, memberByID, ref, projectID))
	}
	return memberResult(db.pool.QueryRow(ctx, memberByRef, ref, organizationID, projectID))
}

func (db *DB) MemberByEmail(ctx context.Context, projectID, organizationID, email string) (auth.Member, error) {
	if !storable(organizationID, email) {
		return auth.Member{}, auth.ErrMemberNotFound
	}
	return memberResult(db.pool.QueryRow(ctx, memberByEmail, organizationID, email, projectID))
}

func profileJSON(m *auth.Member) ([]byte, error) { return json.Marshal(m.MemberProfile) }

// CreateMember inserts the member only if its organization is in the project, so a missing
// organization shows as no row; the unique constraints report a taken address or external id.
// With an imported password both rows go in one round trip with the commit: when the member row
// is not written the password row fails its foreign key, so nothing commits.
func (db *DB) CreateMember(ctx context.Context, m auth.Member, pw *auth.Password) error {
	profile, err := profileJSON(&m)
	if err != nil {
		return err
	}
	const insert = `INSERT INTO members (id, project_id, organization_id, email, external_id, status, profile, failed_attempts, lock_created_at, lock_expires_at, created_at, updated_at)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12
		WHERE EXISTS (SELECT 1 FROM organizations WHERE id = $3 AND project_id = $2)`
	args := []any{m.ID, m.ProjectID, m.OrganizationID, m.EmailAddress, nullString(m.ExternalID), m.Status, profile,
		m.FailedAttempts, ts(m.LockCreatedAt), ts(m.LockExpiresAt), ts(m.CreatedAt), ts(m.UpdatedAt)}
	inserted := func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() != 1 {
			return auth.ErrOrganizationNotFound
		}
		return nil
	}
	if pw == nil {
		return db.retry(ctx, func() error {
			tag, err := db.pool.Exec(ctx, insert, args...)
			if err != nil {
				return err
			}
			return inserted(tag)
		})
	}
	return db.tx(ctx, func(tx *txn) error {
		b := &pgx.Batch{}
		b.Queue(insert, args...).Exec(func(tag pgconn.CommandTag) error { return tx.refuse(inserted(tag)) })
		b.Queue(`INSERT INTO passwords (member_id, id, sealed, created_at) VALUES ($1, $2, $3, $4)`,
			pw.MemberID, pw.ID, pw.Sealed, ts(pw.CreatedAt))
		return tx.commitWith(ctx, b)
	})
}

// queueSaveMember queues the write of every stored field of a member.
func queueSaveMember(b *pgx.Batch, m *auth.Member) error {
	profile, err := profileJSON(m)
	if err != nil {
		return err
	}
	b.Queue(`UPDATE members SET email = $1, external_id = $2, status = $3, profile = $4, failed_attempts = $5, lock_created_at = $6, lock_expires_at = $7, updated_at = $8 WHERE id = $9`,
		m.EmailAddress, nullString(m.ExternalID), m.Status, profile, m.FailedAttempts, ts(m.LockCreatedAt), ts(m.LockExpiresAt), ts(m.UpdatedAt), m.ID)
	return nil
}

// UpdateMember is the locked read-modify-write of one member: read under FOR UPDATE, apply, write
// with apply's events and commit. Two round trips; a unique violation on the write becomes its
// domain error. The row lock makes failed attempts counted this way on different replicas add
// up exactly.
func (db *DB) UpdateMember(ctx context.Context, projectID, memberID string, apply func(*auth.Member) ([]auth.Event, error)) (auth.Member, error) {
	if !storable(memberID) {
		return auth.Member{}, auth.ErrMemberNotFound
	}
	var out auth.Member
	err := db.tx(ctx, func(tx *txn) error {
		var m auth.Member
		b := &pgx.Batch{}
		queueMemberForEdit(tx, b, projectID, memberID, &m)
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

func (db *DB) DeleteMember(ctx context.Context, projectID, memberID string) error {
	if !storable(memberID) {
		return auth.ErrMemberNotFound
	}
	return db.retry(ctx, func() error {
		tag, err := db.pool.Exec(ctx, `DELETE FROM members WHERE id = $1 AND project_id = $2`, memberID, projectID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return auth.ErrMemberNotFound
		}
		return nil
	})
}

// setPasswordSQL writes the password only for a member of the project: no row means no member.
const setPasswordSQL = `INSERT INTO passwords (member_id, id, sealed, created_at)
	SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM members WHERE id = $1 AND project_id = $5)
	ON CONFLICT (member_id) DO UPDATE SET id = excluded.id, sealed = excluded.sealed, created_at = excluded.created_at`

func (db *DB) SetPassword(ctx context.Context, projectID string, pw auth.Password) error {
	if !storable(pw.MemberID) {
		return auth.ErrMemberNotFound
	}
	return db.retry(ctx, func() error {
		tag, err := db.pool.Exec(ctx, setPasswordSQL, pw.MemberID, pw.ID, pw.Sealed, ts(pw.CreatedAt), projectID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return auth.ErrMemberNotFound
		}
		return nil
	})
}

func (db *DB) Password(ctx context.Context, projectID, memberID string) (auth.Password, error) {
	if !storable(memberID) {
		return auth.Password{}, auth.ErrNoPassword
	}
	var (
		pw      = auth.Password{MemberID: memberID}
		created pgtype.Timestamptz
	)
	err := db.pool.QueryRow(ctx, `SELECT p.id, p.sealed, p.created_at FROM passwords p JOIN members m ON m.id = p.member_id WHERE p.member_id = $1 AND m.project_id = $2`,
		memberID, projectID).Scan(&pw.ID, &pw.Sealed, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.Password{}, auth.ErrNoPassword
	}
	if err != nil {
		return auth.Password{}, err
	}
	pw.CreatedAt = fromTS(created)
	return pw, nil
}

package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

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
		extID, totpID, passwordID            sql.NullString
		profile                              string
		lockCreated, lockExpires, crt, updtd sql.NullInt64
	)
	if err := r.Scan(&m.ID, &m.OrganizationID, &m.ProjectID, &m.EmailAddress, &extID, &m.Status, &profile,
		&m.FailedAttempts, &lockCreated, &lockExpires, &crt, &updtd, &totpID, &passwordID); err != nil {
		return auth.Member{}, err
	}
	if err := decodeStored(profile, &m.MemberProfile); err != nil {
		return auth.Member{}, err
	}
	m.ExternalID, m.TOTPRegistrationID, m.PasswordID = extID.String, totpID.String, passwordID.String
	m.LockCreatedAt, m.LockExpiresAt = fromUnix(lockCreated), fromUnix(lockExpires)
	m.CreatedAt, m.UpdatedAt = fromUnix(crt), fromUnix(updtd)
	return m, nil
}

// member resolves ref as a member id, then as an external id inside the organization. An empty
// organizationID takes canonical ids only, anywhere in the project.
func member(ctx context.Context, q querier, projectID, organizationID, ref string) (auth.Member, error) {
	var m auth.Member
	var err error
	if organizationID == "" {
		m, err = scanMember(q.queryRow(ctx, `SELECT `+memberColumns+` FROM members m WHERE m.id = ? AND m.project_id = ?`, ref, projectID))
	} else {
		m, err = scanMember(q.queryRow(ctx, `SELECT `+memberColumns+` FROM members m WHERE m.id = ? AND m.organization_id = ? AND m.project_id = ?`, ref, organizationID, projectID))
		if errors.Is(err, sql.ErrNoRows) {
			m, err = scanMember(q.queryRow(ctx, `SELECT `+memberColumns+` FROM members m WHERE m.organization_id = ? AND m.external_id = ? AND m.project_id = ?`, organizationID, ref, projectID))
		}
	}
	if errors.Is(err, sql.ErrNoRows) {
		return auth.Member{}, auth.ErrMemberNotFound
	}
	return m, err
}

func (db *DB) Member(ctx context.Context, projectID, organizationID, ref string) (auth.Member, error) {
	return member(ctx, db.read, projectID, organizationID, ref)
}

func (db *DB) MemberByEmail(ctx context.Context, projectID, organizationID, email string) (auth.Member, error) {
	m, err := scanMember(db.read.queryRow(ctx, `SELECT `+memberColumns+` FROM members m WHERE m.organization_id = ? AND m.email = ? AND m.project_id = ?`, organizationID, email, projectID))
	if errors.Is(err, sql.ErrNoRows) {
		return auth.Member{}, auth.ErrMemberNotFound
	}
	return m, err
}

// checkMemberUnique finds another member of the organization with m's address or external id.
func checkMemberUnique(ctx context.Context, tx *txn, m *auth.Member) error {
	var n int
	if err := tx.queryRow(ctx, `SELECT count(*) FROM members WHERE organization_id = ? AND email = ? AND id <> ?`, m.OrganizationID, m.EmailAddress, m.ID).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return auth.ErrDuplicateMemberEmail
	}
	if m.ExternalID != "" {
		if err := tx.queryRow(ctx, `SELECT count(*) FROM members WHERE organization_id = ? AND external_id = ? AND id <> ?`, m.OrganizationID, m.ExternalID, m.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return auth.ErrDuplicateMemberExtID
		}
	}
	return nil
}

func (db *DB) CreateMember(ctx context.Context, m auth.Member, pw *auth.Password) error {
	profile, err := json.Marshal(m.MemberProfile)
	if err != nil {
		return err
	}
	return db.tx(ctx, func(tx *txn) error {
		var n int
		if err := tx.queryRow(ctx, `SELECT count(*) FROM organizations WHERE id = ? AND project_id = ?`, m.OrganizationID, m.ProjectID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return auth.ErrOrganizationNotFound
		}
		if err := checkMemberUnique(ctx, tx, &m); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO members (id, project_id, organization_id, email, external_id, status, profile, failed_attempts, lock_created_at, lock_expires_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			m.ID, m.ProjectID, m.OrganizationID, m.EmailAddress, nullString(m.ExternalID), m.Status, string(profile),
			m.FailedAttempts, unix(m.LockCreatedAt), unix(m.LockExpiresAt), unix(m.CreatedAt), unix(m.UpdatedAt)); err != nil {
			return err
		}
		if pw != nil {
			return setPassword(ctx, tx, *pw)
		}
		return nil
	})
}

// storedMember is every field saveMember writes, as it writes them: two members with equal
// snapshots have equal rows. Comparing snapshots (not the members) also sees an apply function
// that edits the profile's maps in place.
type storedMember struct {
	email, externalID, status, profile string
	failedAttempts                     int
	lockCreated, lockExpires, updated  int64
}

func memberSnapshot(m *auth.Member) (storedMember, error) {
	profile, err := json.Marshal(m.MemberProfile)
	if err != nil {
		return storedMember{}, err
	}
	return storedMember{
		email: m.EmailAddress, externalID: m.ExternalID, status: m.Status, profile: string(profile),
		failedAttempts: m.FailedAttempts,
		lockCreated:    m.LockCreatedAt.Unix(), lockExpires: m.LockExpiresAt.Unix(), updated: m.UpdatedAt.Unix(),
	}, nil
}

// saveMember writes every stored field of a member.
func saveMember(ctx context.Context, tx *txn, m *auth.Member) error {
	profile, err := json.Marshal(m.MemberProfile)
	if err != nil {
		return err
	}
	_, err = tx.exec(ctx, `UPDATE members SET email = ?, external_id = ?, status = ?, profile = ?, failed_attempts = ?, lock_created_at = ?, lock_expires_at = ?, updated_at = ? WHERE id = ?`,
		m.EmailAddress, nullString(m.ExternalID), m.Status, string(profile), m.FailedAttempts, unix(m.LockCreatedAt), unix(m.LockExpiresAt), unix(m.UpdatedAt), m.ID)
	return err
}

func (db *DB) UpdateMember(ctx context.Context, projectID, memberID string, apply func(*auth.Member) ([]auth.Event, error)) (auth.Member, error) {
	var out auth.Member
	err := db.tx(ctx, func(tx *txn) error {
		m, err := member(ctx, tx, projectID, "", memberID)
		if err != nil {
			return err
		}
		before := m
		events, err := apply(&m)
		if err != nil {
			return err
		}
		if m.EmailAddress != before.EmailAddress || m.ExternalID != before.ExternalID {
			if err := checkMemberUnique(ctx, tx, &m); err != nil {
				return err
			}
		}
		out = m
		if err := saveMember(ctx, tx, &m); err != nil {
			return err
		}
		return insertEvents(ctx, tx, events)
	})
	return out, err
}

func (db *DB) DeleteMember(ctx context.Context, projectID, memberID string) error {
	return db.tx(ctx, func(tx *txn) error {
		res, err := tx.exec(ctx, `DELETE FROM members WHERE id = ? AND project_id = ?`, memberID, projectID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return auth.ErrMemberNotFound
		}
		return nil
	})
}

func setPassword(ctx context.Context, tx *txn, pw auth.Password) error {
	_, err := tx.exec(ctx, `INSERT INTO passwords (member_id, id, sealed, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (member_id) DO UPDATE SET id = excluded.id, sealed = excluded.sealed, created_at = excluded.created_at`,
		pw.MemberID, pw.ID, pw.Sealed, unix(pw.CreatedAt))
	return err
}

func (db *DB) SetPassword(ctx context.Context, projectID string, pw auth.Password) error {
	return db.tx(ctx, func(tx *txn) error {
		if _, err := member(ctx, tx, projectID, "", pw.MemberID); err != nil {
			return err
		}
		return setPassword(ctx, tx, pw)
	})
}

func (db *DB) Password(ctx context.Context, projectID, memberID string) (auth.Password, error) {
	var (
		pw      = auth.Password{MemberID: memberID}
		created sql.NullInt64
	)
	err := db.read.queryRow(ctx, `SELECT p.id, p.sealed, p.created_at FROM passwords p JOIN members m ON m.id = p.member_id WHERE p.member_id = ? AND m.project_id = ?`,
		memberID, projectID).Scan(&pw.ID, &pw.Sealed, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return auth.Password{}, auth.ErrNoPassword
	}
	pw.CreatedAt = fromUnix(created)
	return pw, err
}

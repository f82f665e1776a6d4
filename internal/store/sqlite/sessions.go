package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
)

const sessionColumns = `s.id, s.project_id, s.organization_id, s.member_id, s.token_digest, s.started_at, s.last_accessed_at, s.expires_at, s.factors, s.custom_claims`

func scanSession(r scanner) (auth.Session, error) {
	var (
		s                          auth.Session
		started, accessed, expires sql.NullInt64
		factors, claims            string
	)
	if err := r.Scan(&s.ID, &s.ProjectID, &s.OrganizationID, &s.MemberID, &s.TokenDigest, &started, &accessed, &expires, &factors, &claims); err != nil {
		return auth.Session{}, err
	}
	if err := decodeStored(factors, &s.Factors); err != nil {
		return auth.Session{}, err
	}
	if err := decodeStored(claims, &s.CustomClaims); err != nil {
		return auth.Session{}, err
	}
	s.StartedAt, s.LastAccessedAt, s.ExpiresAt = fromUnix(started), fromUnix(accessed), fromUnix(expires)
	return s, nil
}

func sessionBy(ctx context.Context, q querier, where string, args ...any) (auth.Session, error) {
	s, err := scanSession(q.queryRow(ctx, `SELECT `+sessionColumns+` FROM sessions s WHERE `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return auth.Session{}, auth.ErrSessionNotFound
	}
	return s, err
}

func (db *DB) Session(ctx context.Context, projectID, id string, now time.Time) (auth.Session, error) {
	return sessionBy(ctx, db.read, `s.id = ? AND s.project_id = ? AND s.expires_at > ?`, id, projectID, now.Unix())
}

func (db *DB) SessionByToken(ctx context.Context, projectID string, digest []byte, now time.Time) (auth.Session, error) {
	return sessionBy(ctx, db.read, `s.token_digest = ? AND s.project_id = ? AND s.expires_at > ?`, digest, projectID, now.Unix())
}

func (db *DB) Sessions(ctx context.Context, projectID, memberID string, now time.Time) ([]auth.Session, error) {
	rows, err := db.read.query(ctx, `SELECT `+sessionColumns+` FROM sessions s WHERE s.member_id = ? AND s.project_id = ? AND s.expires_at > ? ORDER BY s.started_at, s.id`,
		memberID, projectID, now.Unix())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []auth.Session{}
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func insertSession(ctx context.Context, tx *txn, s *auth.Session) error {
	factors, claims, err := sessionJSON(s)
	if err != nil {
		return err
	}
	_, err = tx.exec(ctx, `INSERT INTO sessions (id, project_id, organization_id, member_id, token_digest, started_at, last_accessed_at, expires_at, factors, custom_claims)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.ProjectID, s.OrganizationID, s.MemberID, s.TokenDigest, unix(s.StartedAt), unix(s.LastAccessedAt), unix(s.ExpiresAt), factors, claims)
	return err
}

func saveSession(ctx context.Context, tx *txn, s *auth.Session) error {
	factors, claims, err := sessionJSON(s)
	if err != nil {
		return err
	}
	_, err = tx.exec(ctx, `UPDATE sessions SET last_accessed_at = ?, expires_at = ?, factors = ?, custom_claims = ? WHERE id = ?`,
		unix(s.LastAccessedAt), unix(s.ExpiresAt), factors, claims, s.ID)
	return err
}

func sessionJSON(s *auth.Session) (factors, claims string, err error) {
	if s.Factors == nil {
		s.Factors = []auth.Factor{}
	}
	if s.CustomClaims == nil {
		s.CustomClaims = map[string]any{}
	}
	f, err := json.Marshal(s.Factors)
	if err != nil {
		return "", "", err
	}
	c, err := json.Marshal(s.CustomClaims)
	return string(f), string(c), err
}

func (db *DB) UpdateSession(ctx context.Context, projectID, id string, now time.Time, apply func(*auth.Session) error) (auth.Session, error) {
	var out auth.Session
	err := db.tx(ctx, func(tx *txn) error {
		s, err := sessionBy(ctx, tx, `s.id = ? AND s.project_id = ? AND s.expires_at > ?`, id, projectID, now.Unix())
		if err != nil {
			return err
		}
		if err := apply(&s); err != nil {
			return err
		}
		out = s
		return saveSession(ctx, tx, &s)
	})
	return out, err
}

func (db *DB) DeleteSession(ctx context.Context, projectID, id string, now time.Time, events ...auth.Event) error {
	return db.tx(ctx, func(tx *txn) error {
		res, err := tx.exec(ctx, `DELETE FROM sessions WHERE id = ? AND project_id = ? AND expires_at > ?`, id, projectID, now.Unix())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return auth.ErrSessionNotFound
		}
		return insertEvents(ctx, tx, events)
	})
}

func (db *DB) DeleteMemberSessions(ctx context.Context, projectID, memberID string, now time.Time, events func(revoked []string) []auth.Event) error {
	return db.tx(ctx, func(tx *txn) error {
		rows, err := tx.query(ctx, `DELETE FROM sessions WHERE member_id = ? AND project_id = ? RETURNING id, started_at, expires_at`, memberID, projectID)
		if err != nil {
			return err
		}
		var live []revokedSession
		for rows.Next() {
			var r revokedSession
			if err := rows.Scan(&r.id, &r.started, &r.expires); err != nil {
				rows.Close()
				return err
			}
			if r.expires > now.Unix() {
				live = append(live, r)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if events == nil {
			return nil
		}
		return insertEvents(ctx, tx, events(revokedIDs(live)))
	})
}

// revokedSession is a session DeleteMemberSessions ended.
type revokedSession struct {
	id               string
	started, expires int64
}

// revokedIDs orders revoked sessions as Sessions lists them: oldest started_at, then id.
func revokedIDs(rs []revokedSession) []string {
	slices.SortFunc(rs, func(a, b revokedSession) int {
		if c := cmp.Compare(a.started, b.started); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.id
	}
	return ids
}

const istColumns = `i.token_digest, i.project_id, i.organization_id, i.member_id, i.factors, i.created_at, i.expires_at`

func scanIST(r scanner) (auth.IntermediateSession, error) {
	var (
		ist              auth.IntermediateSession
		factors          string
		created, expires sql.NullInt64
	)
	if err := r.Scan(&ist.TokenDigest, &ist.ProjectID, &ist.OrganizationID, &ist.MemberID, &factors, &created, &expires); err != nil {
		return auth.IntermediateSession{}, err
	}
	if err := decodeStored(factors, &ist.Factors); err != nil {
		return auth.IntermediateSession{}, err
	}
	ist.CreatedAt, ist.ExpiresAt = fromUnix(created), fromUnix(expires)
	return ist, nil
}

func (db *DB) CreateIntermediateSession(ctx context.Context, ist auth.IntermediateSession, events ...auth.Event) error {
	factors, err := json.Marshal(ist.Factors)
	if err != nil {
		return err
	}
	return db.tx(ctx, func(tx *txn) error {
		if _, err := tx.exec(ctx, `INSERT INTO intermediate_sessions (token_digest, project_id, organization_id, member_id, factors, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			ist.TokenDigest, ist.ProjectID, ist.OrganizationID, ist.MemberID, string(factors), unix(ist.CreatedAt), unix(ist.ExpiresAt)); err != nil {
			return err
		}
		return insertEvents(ctx, tx, events)
	})
}

func intermediateSession(ctx context.Context, q querier, projectID string, digest []byte, now time.Time) (auth.IntermediateSession, error) {
	ist, err := scanIST(q.queryRow(ctx, `SELECT `+istColumns+` FROM intermediate_sessions i WHERE i.token_digest = ? AND i.project_id = ? AND i.expires_at > ?`, digest, projectID, now.Unix()))
	if errors.Is(err, sql.ErrNoRows) {
		return auth.IntermediateSession{}, auth.ErrISTNotFound
	}
	return ist, err
}

func (db *DB) IntermediateSession(ctx context.Context, projectID string, digest []byte, now time.Time) (auth.IntermediateSession, error) {
	return intermediateSession(ctx, db.read, projectID, digest, now)
}

func (db *DB) UpdateIntermediateSession(ctx context.Context, projectID string, digest []byte, now time.Time, apply func(*auth.IntermediateSession) error, events ...auth.Event) (auth.IntermediateSession, error) {
	var out auth.IntermediateSession
	err := db.tx(ctx, func(tx *txn) error {
		ist, err := intermediateSession(ctx, tx, projectID, digest, now)
		if err != nil {
			return err
		}
		if err := apply(&ist); err != nil {
			return err
		}
		factors, err := json.Marshal(ist.Factors)
		if err != nil {
			return err
		}
		out = ist
		if _, err := tx.exec(ctx, `UPDATE intermediate_sessions SET factors = ?, expires_at = ? WHERE token_digest = ?`, string(factors), unix(ist.ExpiresAt), digest); err != nil {
			return err
		}
		return insertEvents(ctx, tx, events)
	})
	return out, err
}

// Complete applies an auth.Completion in one transaction; see its documentation for the steps.
func (db *DB) Complete(ctx context.Context, c auth.Completion) (auth.Completed, error) {
	var out auth.Completed
	err := db.tx(ctx, func(tx *txn) error {
		m, err := member(ctx, tx, c.ProjectID, "", c.MemberID)
		if err != nil {
			return err
		}
		if c.RefuseIfLocked {
			if err := m.LockError(c.Now); err != nil {
				return err
			}
		}
		if c.SpendRecoveryCode != "" {
			id, err := codeIDBytes(c.SpendRecoveryCode)
			if err != nil {
				return err
			}
			// The used_at IS NULL condition is the single-use guarantee: of two transactions
			// spending one code, the second finds no row to update.
			res, err := tx.exec(ctx, `UPDATE recovery_codes SET used_at = ? WHERE registration_pk = (SELECT pk FROM totp_registrations WHERE member_id = ?) AND id = ? AND used_at IS NULL`,
				c.Now.Unix(), m.ID, id)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return auth.ErrRecoveryCodeRejected
			}
			if err := tx.queryRow(ctx, `SELECT count(*) FROM recovery_codes WHERE registration_pk = (SELECT pk FROM totp_registrations WHERE member_id = ?) AND used_at IS NULL`, m.ID).Scan(&out.RemainingCodes); err != nil {
				return err
			}
		}
		if st := c.SpendTOTPStep; st != nil {
			// The single writer makes this read-modify-write atomic: of two transactions spending
			// one step, the second reads the first's write and finds the step spent.
			reg, err := scanTOTP(tx.queryRow(ctx, `SELECT `+totpColumns+` FROM totp_registrations t WHERE t.id = ? AND t.member_id = ?`, st.RegistrationID, m.ID))
			if errors.Is(err, sql.ErrNoRows) {
				return auth.ErrTOTPCodeAlreadyUsed
			}
			if err != nil {
				return err
			}
			if err := reg.SpendStep(st.Step); err != nil {
				return err
			}
			if _, err := tx.exec(ctx, `UPDATE totp_registrations SET last_step = ?, unspent_steps = ? WHERE id = ?`, reg.LastStep, int64(reg.UnspentSteps), reg.ID); err != nil {
				return err
			}
		}

		var s auth.Session
		insert := true
		switch {
		case c.ConsumeIST != nil:
			var factors string
			err := tx.queryRow(ctx, `DELETE FROM intermediate_sessions WHERE token_digest = ? AND project_id = ? AND member_id = ? AND expires_at > ? RETURNING factors`,
				c.ConsumeIST, c.ProjectID, m.ID, c.Now.Unix()).Scan(&factors)
			if errors.Is(err, sql.ErrNoRows) {
				return auth.ErrISTNotFound
			}
			if err != nil {
				return err
			}
			s = c.NewSession
			s.Factors = nil // the session starts from the intermediate session's factors alone
			if err := decodeStored(factors, &s.Factors); err != nil {
				return err
			}
		case c.SessionID != "":
			if s, err = sessionBy(ctx, tx, `s.id = ? AND s.project_id = ? AND s.expires_at > ?`, c.SessionID, c.ProjectID, c.Now.Unix()); err != nil {
				return err
			}
			insert = false
		default:
			s = c.NewSession
		}
		if c.ApplySession != nil {
			if err := c.ApplySession(&s); err != nil {
				return err
			}
		}
		if insert {
			err = insertSession(ctx, tx, &s)
		} else {
			err = saveSession(ctx, tx, &s)
		}
		if err != nil {
			return err
		}
		before := m
		if c.ApplyMember != nil {
			// Most successes change nothing on the member (no failures to reset, already
			// enrolled): then the row is not rewritten, which spares the single writer a
			// statement and the commit a page.
			unchanged, err := memberSnapshot(&m)
			if err != nil {
				return err
			}
			if err := c.ApplyMember(&m); err != nil {
				return err
			}
			if after, err := memberSnapshot(&m); err != nil {
				return err
			} else if after != unchanged {
				if err := saveMember(ctx, tx, &m); err != nil {
					return err
				}
			}
		}
		out.Session, out.Member = s, m
		if c.Events != nil {
			return insertEvents(ctx, tx, c.Events(before, out))
		}
		return nil
	})
	return out, err
}

func (db *DB) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	err := db.tx(ctx, func(tx *txn) error {
		total = 0 // the function may run more than once
		for _, q := range []string{`DELETE FROM sessions WHERE expires_at <= ?`, `DELETE FROM intermediate_sessions WHERE expires_at <= ?`} {
			res, err := tx.exec(ctx, q, now.Unix())
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			total += n
		}
		return nil
	})
	return total, err
}

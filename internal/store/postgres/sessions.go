package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sparekey/sparekey/internal/auth"
)

const sessionColumns = `s.id, s.project_id, s.organization_id, s.member_id, s.token_digest, s.started_at, s.last_accessed_at, s.expires_at, s.factors, s.custom_claims`

func scanSession(r scanner) (auth.Session, error) {
	var (
		s                          auth.Session
		started, accessed, expires pgtype.Timestamptz
		factors, claims            []byte
	)
	if err := r.Scan(&s.ID, &s.ProjectID, &s.OrganizationID, &s.MemberID, &s.TokenDigest, &started, &accessed, &expires, &factors, &claims); err != nil {
		return auth.Session{}, err
	}
	if err := json.Unmarshal(factors, &s.Factors); err != nil {
		return auth.Session{}, err
	}
	if err := json.Unmarshal(claims, &s.CustomClaims); err != nil {
		return auth.Session{}, err
	}
	s.StartedAt, s.LastAccessedAt, s.ExpiresAt = fromTS(started), fromTS(accessed), fromTS(expires)
	return s, nil
}

// sessionResult scans a session lookup, answering ErrSessionNotFound for no row.
func sessionResult(row pgx.Row) (auth.Session, error) {
	s, err := scanSession(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.Session{}, auth.ErrSessionNotFound
	}
	return s, err
}

const (
	liveSessionByID        = `SELECT ` + sessionColumns + ` FROM sessions s WHERE s.id = $1 AND s.project_id = $2 AND s.expires_at > $3`
	liveSessionByIDForEdit = liveSessionByID + ` FOR UPDATE`
)

func (db *DB) Session(ctx context.Context, projectID, id string, now time.Time) (auth.Session, error) {
	if !storable(id) {
		return auth.Session{}, auth.ErrSessionNotFound
	}
	return sessionResult(db.pool.QueryRow(ctx, liveSessionByID, id, projectID, at(now)))
}

func (db *DB) SessionByToken(ctx context.Context, projectID string, digest []byte, now time.Time) (auth.Session, error) {
	return sessionResult(db.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions s WHERE s.token_digest = $1 AND s.project_id = $2 AND s.expires_at > $3`,
		digest, projectID, at(now)))
}

func (db *DB) Sessions(ctx context.Context, projectID, memberID string, now time.Time) ([]auth.Session, error) {
	out := []auth.Session{}
	if !storable(memberID) {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions s WHERE s.member_id = $1 AND s.project_id = $2 AND s.expires_at > $3 ORDER BY s.started_at, s.id`,
		memberID, projectID, at(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// sessionJSON encodes a session's documents, storing absent ones as empty ones (and leaving s
// so, as the SQLite store does).
func sessionJSON(s *auth.Session) (factors, claims []byte, err error) {
	if s.Factors == nil {
		s.Factors = []auth.Factor{}
	}
	if s.CustomClaims == nil {
		s.CustomClaims = map[string]any{}
	}
	if factors, err = json.Marshal(s.Factors); err != nil {
		return nil, nil, err
	}
	claims, err = json.Marshal(s.CustomClaims)
	return factors, claims, err
}

func queueInsertSession(b *pgx.Batch, s *auth.Session) error {
	factors, claims, err := sessionJSON(s)
	if err != nil {
		return err
	}
	b.Queue(`INSERT INTO sessions (id, project_id, organization_id, member_id, token_digest, started_at, last_accessed_at, expires_at, factors, custom_claims)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		s.ID, s.ProjectID, s.OrganizationID, s.MemberID, s.TokenDigest, ts(s.StartedAt), ts(s.LastAccessedAt), ts(s.ExpiresAt), factors, claims)
	return nil
}

func queueSaveSession(b *pgx.Batch, s *auth.Session) error {
	factors, claims, err := sessionJSON(s)
	if err != nil {
		return err
	}
	b.Queue(`UPDATE sessions SET last_accessed_at = $1, expires_at = $2, factors = $3, custom_claims = $4 WHERE id = $5`,
		ts(s.LastAccessedAt), ts(s.ExpiresAt), factors, claims, s.ID)
	return nil
}

func (db *DB) UpdateSession(ctx context.Context, projectID, id string, now time.Time, apply func(*auth.Session) error) (auth.Session, error) {
	if !storable(id) {
		return auth.Session{}, auth.ErrSessionNotFound
	}
	var out auth.Session
	err := db.tx(ctx, func(tx *txn) error {
		var s auth.Session
		b := &pgx.Batch{}
		b.Queue(liveSessionByIDForEdit, id, projectID, at(now)).QueryRow(func(row pgx.Row) error {
			var err error
			s, err = sessionResult(row)
			return tx.refuse(err)
		})
		if err := tx.send(ctx, b); err != nil {
			return err
		}
		if err := apply(&s); err != nil {
			return err
		}
		// The SQLite store returns the session as apply left it, before absent documents are
		// stored as empty ones; so does this one.
		applied := s
		b = &pgx.Batch{}
		if err := queueSaveSession(b, &s); err != nil {
			return err
		}
		if err := tx.commitWith(ctx, b); err != nil {
			return err
		}
		out = applied
		return nil
	})
	return out, err
}

// deleteSession deletes a live session and records its events (guarded by the deletion) in one
// statement, and counts what it deleted.
var deleteSession = `WITH d AS (
		DELETE FROM sessions WHERE id = $1 AND project_id = $2 AND expires_at > $3 RETURNING 1
	), ev AS (
		` + insertEventsFrom("d", 4) + `
	)
	SELECT count(*) FROM d`

func (db *DB) DeleteSession(ctx context.Context, projectID, id string, now time.Time, events ...auth.Event) error {
	if !storable(id) {
		return auth.ErrSessionNotFound
	}
	ev, err := newEventArrays(events)
	if err != nil {
		return err
	}
	args := append([]any{id, projectID, at(now)}, ev.args()...)
	return db.retry(ctx, func() error {
		var n int
		if err := db.pool.QueryRow(ctx, deleteSession, args...).Scan(&n); err != nil {
			return err
		}
		if n != 1 {
			return auth.ErrSessionNotFound
		}
		return nil
	})
}

// DeleteMemberSessions deletes in the first round trip, learning which sessions were live, and
// records their events with the commit in the second.
func (db *DB) DeleteMemberSessions(ctx context.Context, projectID, memberID string, now time.Time, events func(revoked []string) []auth.Event) error {
	if !storable(memberID) {
		if events != nil {
			return db.RecordEvents(ctx, events(nil)...)
		}
		return nil
	}
	return db.tx(ctx, func(tx *txn) error {
		var live []revokedSession
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM sessions WHERE member_id = $1 AND project_id = $2 RETURNING id, started_at, expires_at`,
			memberID, projectID).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var (
					r                revokedSession
					started, expires pgtype.Timestamptz
				)
				if err := rows.Scan(&r.id, &started, &expires); err != nil {
					return err
				}
				r.started, r.expires = fromTS(started), fromTS(expires)
				if r.expires.After(at(now)) {
					live = append(live, r)
				}
			}
			return rows.Err()
		})
		if err := tx.send(ctx, b); err != nil {
			return err
		}
		b = &pgx.Batch{}
		if events != nil {
			if err := queueEvents(b, events(revokedIDs(live))); err != nil {
				return err
			}
		}
		return tx.commitWith(ctx, b)
	})
}

// revokedSession is a session DeleteMemberSessions ended.
type revokedSession struct {
	id               string
	started, expires time.Time
}

// revokedIDs orders revoked sessions as Sessions lists them: oldest started_at, then id.
func revokedIDs(rs []revokedSession) []string {
	slices.SortFunc(rs, func(a, b revokedSession) int {
		if c := a.started.Compare(b.started); c != 0 {
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
		factors          []byte
		created, expires pgtype.Timestamptz
	)
	if err := r.Scan(&ist.TokenDigest, &ist.ProjectID, &ist.OrganizationID, &ist.MemberID, &factors, &created, &expires); err != nil {
		return auth.IntermediateSession{}, err
	}
	if err := json.Unmarshal(factors, &ist.Factors); err != nil {
		return auth.IntermediateSession{}, err
	}
	ist.CreatedAt, ist.ExpiresAt = fromTS(created), fromTS(expires)
	return ist, nil
}

func istResult(row pgx.Row) (auth.IntermediateSession, error) {
	ist, err := scanIST(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.IntermediateSession{}, auth.ErrISTNotFound
	}
	return ist, err
}

const liveIST = `SELECT ` + istColumns + ` FROM intermediate_sessions i WHERE i.token_digest = $1 AND i.project_id = $2 AND i.expires_at > $3`

// createIST inserts an intermediate session and its events in one statement.
var createIST = `WITH ist AS (
		INSERT INTO intermediate_sessions (token_digest, project_id, organization_id, member_id, factors, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING 1
	)
	` + insertEventsFrom("ist", 8)

func (db *DB) CreateIntermediateSession(ctx context.Context, ist auth.IntermediateSession, events ...auth.Event) error {
	factors, err := json.Marshal(ist.Factors)
	if err != nil {
		return err
	}
	ev, err := newEventArrays(events)
	if err != nil {
		return err
	}
	args := append([]any{ist.TokenDigest, ist.ProjectID, ist.OrganizationID, ist.MemberID, factors, ts(ist.CreatedAt), ts(ist.ExpiresAt)}, ev.args()...)
	return db.retry(ctx, func() error {
		_, err := db.pool.Exec(ctx, createIST, args...)
		return err
	})
}

func (db *DB) IntermediateSession(ctx context.Context, projectID string, digest []byte, now time.Time) (auth.IntermediateSession, error) {
	return istResult(db.pool.QueryRow(ctx, liveIST, digest, projectID, at(now)))
}

func (db *DB) UpdateIntermediateSession(ctx context.Context, projectID string, digest []byte, now time.Time, apply func(*auth.IntermediateSession) error, events ...auth.Event) (auth.IntermediateSession, error) {
	var out auth.IntermediateSession
	err := db.tx(ctx, func(tx *txn) error {
		var ist auth.IntermediateSession
		b := &pgx.Batch{}
		b.Queue(liveIST+` FOR UPDATE`, digest, projectID, at(now)).QueryRow(func(row pgx.Row) error {
			var err error
			ist, err = istResult(row)
			return tx.refuse(err)
		})
		if err := tx.send(ctx, b); err != nil {
			return err
		}
		if err := apply(&ist); err != nil {
			return err
		}
		factors, err := json.Marshal(ist.Factors)
		if err != nil {
			return err
		}
		b = &pgx.Batch{}
		b.Queue(`UPDATE intermediate_sessions SET factors = $1, expires_at = $2 WHERE token_digest = $3`, factors, ts(ist.ExpiresAt), digest)
		if err := queueEvents(b, events); err != nil {
			return err
		}
		if err := tx.commitWith(ctx, b); err != nil {
			return err
		}
		out = ist
		return nil
	})
	return out, err
}

// Complete applies an auth.Completion in one transaction of two round trips; see its
// documentation for the steps. The first batch locks the member and spends the proofs (a TOTP
// step by reading the registration under a row lock); its callbacks check the results in the
// Completion's order (member, lock, code, TOTP step, session), and any refusal rolls the whole
// batch back. The second writes the registration's spent steps, the session, the member and the
// events, and commits.
func (db *DB) Complete(ctx context.Context, c auth.Completion) (auth.Completed, error) {
	if !storable(c.MemberID) {
		return auth.Completed{}, auth.ErrMemberNotFound
	}
	if c.SessionID != "" && !storable(c.SessionID) {
		return auth.Completed{}, auth.ErrSessionNotFound
	}
	var codeID pgtype.UUID
	if c.SpendRecoveryCode != "" {
		var err error
		if codeID, err = codeUUID(c.SpendRecoveryCode); err != nil {
			return auth.Completed{}, err
		}
	}
	now := at(c.Now)
	var out auth.Completed
	err := db.tx(ctx, func(tx *txn) error {
		var (
			done   auth.Completed
			m      auth.Member
			s      auth.Session
			insert = true
		)
		b := &pgx.Batch{}
		b.Queue(memberByIDForEdit, c.MemberID, c.ProjectID).QueryRow(func(row pgx.Row) error {
			var err error
			if m, err = memberResult(row); err != nil {
				return tx.refuse(err)
			}
			if c.RefuseIfLocked {
				return tx.refuse(m.LockError(c.Now))
			}
			return nil
		})
		if c.SpendRecoveryCode != "" {
			// The used_at IS NULL condition is the single-use guarantee: of two transactions
			// spending one code, the second waits for the first's row lock, then finds no row to
			// update.
			b.Queue(`UPDATE recovery_codes SET used_at = $1 WHERE registration_pk = (SELECT pk FROM totp_registrations WHERE member_id = $2) AND id = $3 AND used_at IS NULL`,
				now, c.MemberID, codeID).Exec(func(tag pgconn.CommandTag) error {
				if tag.RowsAffected() != 1 {
					return tx.refuse(auth.ErrRecoveryCodeRejected)
				}
				return nil
			})
			b.Queue(`SELECT count(*) FROM recovery_codes WHERE registration_pk = (SELECT pk FROM totp_registrations WHERE member_id = $1) AND used_at IS NULL`,
				c.MemberID).QueryRow(func(row pgx.Row) error {
				return row.Scan(&done.RemainingCodes)
			})
		}
		var reg *auth.TOTPRegistration // with the step spent, to write back
		if st := c.SpendTOTPStep; st != nil {
			// The row lock is the single-use guarantee: of two transactions spending one step, the
			// second waits for the first to commit, then reads its write and finds the step spent.
			// (The member's lock above already orders them; this one does not rely on it.)
			b.Queue(`SELECT `+totpColumns+` FROM totp_registrations t WHERE t.id = $1 AND t.member_id = $2 FOR NO KEY UPDATE`,
				st.RegistrationID, c.MemberID).QueryRow(func(row pgx.Row) error {
				r, err := scanTOTP(row)
				if errors.Is(err, pgx.ErrNoRows) {
					return tx.refuse(auth.ErrTOTPCodeAlreadyUsed)
				}
				if err != nil {
					return err
				}
				if err := r.SpendStep(st.Step); err != nil {
					return tx.refuse(err)
				}
				reg = &r
				return nil
			})
		}
		switch {
		case c.ConsumeIST != nil:
			b.Queue(`DELETE FROM intermediate_sessions WHERE token_digest = $1 AND project_id = $2 AND member_id = $3 AND expires_at > $4 RETURNING factors`,
				c.ConsumeIST, c.ProjectID, c.MemberID, now).QueryRow(func(row pgx.Row) error {
				var factors []byte
				err := row.Scan(&factors)
				if errors.Is(err, pgx.ErrNoRows) {
					return tx.refuse(auth.ErrISTNotFound)
				}
				if err != nil {
					return err
				}
				s = c.NewSession
				s.Factors = nil // a fresh slice: decoding into NewSession's would write into the caller's array
				return json.Unmarshal(factors, &s.Factors)
			})
		case c.SessionID != "":
			insert = false
			b.Queue(liveSessionByIDForEdit, c.SessionID, c.ProjectID, now).QueryRow(func(row pgx.Row) error {
				var err error
				s, err = sessionResult(row)
				return tx.refuse(err)
			})
		default:
			s = c.NewSession
		}
		if err := tx.send(ctx, b); err != nil {
			return err
		}

		if c.ApplySession != nil {
			if err := c.ApplySession(&s); err != nil {
				return err
			}
		}
		b = &pgx.Batch{}
		var err error
		if insert {
			err = queueInsertSession(b, &s)
		} else {
			err = queueSaveSession(b, &s)
		}
		if err != nil {
			return err
		}
		if reg != nil {
			b.Queue(`UPDATE totp_registrations SET last_step = $1, unspent_steps = $2 WHERE id = $3`,
				reg.LastStep, int64(reg.UnspentSteps), reg.ID)
		}
		before := m
		if c.ApplyMember != nil {
			if err := c.ApplyMember(&m); err != nil {
				return err
			}
			if err := queueSaveMember(b, &m); err != nil {
				return err
			}
		}
		done.Session, done.Member = s, m
		if c.Events != nil {
			if err := queueEvents(b, c.Events(before, done)); err != nil {
				return err
			}
		}
		if err := tx.commitWith(ctx, b); err != nil {
			return err
		}
		out = done
		return nil
	})
	return out, err
}

// DeleteExpired removes ended sessions and intermediate sessions in one statement.
func (db *DB) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := db.retry(ctx, func() error {
		return db.pool.QueryRow(ctx, `WITH s AS (DELETE FROM sessions WHERE expires_at <= $1 RETURNING 1),
			i AS (DELETE FROM intermediate_sessions WHERE expires_at <= $1 RETURNING 1)
			SELECT (SELECT count(*) FROM s) + (SELECT count(*) FROM i)`, at(now)).Scan(&n)
	})
	return n, err
}

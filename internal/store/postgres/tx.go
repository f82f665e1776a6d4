package postgres

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sparekey/sparekey/internal/auth"
)

// txn is one transaction on one pooled connection. Its statements travel in batches: the BEGIN
// goes with the first batch and, where the last batch cannot fail on our side, the COMMIT with the
// last, so a read-modify-write costs two round trips rather than four.
//
// Transactions run at READ COMMITTED. The rules that need more take explicit row locks
// (SELECT … FOR UPDATE on the row an apply function edits) or are conditional single statements
// (a code is spent by UPDATE … WHERE used_at IS NULL); every statement sees the rows committed
// before it started, so a transaction that waited for a lock reads what the winner wrote.
type txn struct {
	conn      *pgx.Conn
	begun     bool
	committed bool
	refusal   error
}

const (
	beginQuery  = "begin"
	commitQuery = "commit"
)

// refuse records a domain refusal found by a batch callback; send returns the first one once the
// batch is read. Callbacks report refusals this way rather than by returning them because pgx
// treats a batch that returned an error as failed and drops its statements from the
// connection's cache, which would cost every refused recover a re-prepare. Errors other than
// domain errors are returned as they are.
func (t *txn) refuse(err error) error {
	var de *auth.Error
	if !errors.As(err, &de) {
		return err
	}
	if t.refusal == nil {
		t.refusal = err
	}
	return nil
}

// send runs b's statements in one round trip, after BEGIN if the transaction has not begun. The
// callbacks set on b's queued queries run in order; it returns the first refusal they recorded,
// or the batch's error, and the caller then returns it so the transaction rolls back.
func (t *txn) send(ctx context.Context, b *pgx.Batch) error {
	if !t.begun {
		b.QueuedQueries = append([]*pgx.QueuedQuery{{SQL: beginQuery}}, b.QueuedQueries...)
		t.begun = true
	}
	err := t.conn.SendBatch(ctx, b).Close()
	if t.refusal != nil {
		return t.refusal
	}
	return err
}

// commitWith runs b's statements and COMMIT in one round trip. The server skips the COMMIT when a
// statement fails, but not when a callback of ours refuses, so b's callbacks may refuse only a
// statement that wrote nothing (an INSERT … WHERE EXISTS that found no parent); every other
// decision belongs in an earlier batch.
func (t *txn) commitWith(ctx context.Context, b *pgx.Batch) error {
	b.Queue(commitQuery).Exec(func(tag pgconn.CommandTag) error {
		if tag.String() != "COMMIT" {
			return errTxAborted
		}
		t.committed = true
		return nil
	})
	return t.send(ctx, b)
}

var errTxAborted = errors.New("postgres: the transaction was rolled back instead of committed")

// finish commits a transaction fn left open, or rolls back after an error.
func (t *txn) finish(ctx context.Context, err error) error {
	if !t.begun || t.committed {
		return err
	}
	if err == nil {
		tag, err := t.conn.Exec(ctx, commitQuery)
		if err != nil {
			return err
		}
		if tag.String() != "COMMIT" {
			return errTxAborted
		}
		return nil
	}
	if !t.conn.IsClosed() && t.conn.PgConn().TxStatus() != 'I' {
		// The caller's context may be what failed; the rollback must still happen, briefly.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		// A failed rollback leaves the connection in a transaction, and the pool then discards
		// it rather than reuse it.
		_, _ = t.conn.Exec(rctx, "rollback")
	}
	return err
}

// tx runs fn in a transaction on one connection and commits when fn returns nil, retrying the
// whole of it after a serialization failure or a deadlock. fn may therefore run more than once; the
// apply functions it calls are pure, and it must build its batches afresh each time.
func (db *DB) tx(ctx context.Context, fn func(*txn) error) error {
	return db.retry(ctx, func() error {
		conn, err := db.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		t := &txn{conn: conn.Conn()}
		return t.finish(ctx, fn(t))
	})
}

// Retry policy: a serialization failure or deadlock is retried up to maxAttempts times in all,
// after a short randomised pause that doubles each time (about 2, 4, 8, 16 ms), so transactions
// that collided do not collide again in lockstep. Anything else is returned at once.
const (
	maxAttempts  = 5
	retryBackoff = 2 * time.Millisecond
)

func (db *DB) retry(ctx context.Context, op func() error) error {
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil || attempt == maxAttempts || !retryable(err) {
			return translate(err)
		}
		d := retryBackoff << (attempt - 1)
		d = d/2 + rand.N(d/2+1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

// SQLSTATE codes the store acts on.
const (
	codeSerializationFailure     = "40001"
	codeDeadlockDetected         = "40P01"
	codeUniqueViolation          = "23505"
	codeForeignKeyViolation      = "23503"
	codeCharacterNotInRepertoire = "22021"
	codeUntranslatableCharacter  = "22P05"
)

func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == codeSerializationFailure || pe.Code == codeDeadlockDetected)
}

// constraintErrors maps the schema's constraints to the domain error a violation means. Unique
// constraints report a taken value; foreign keys report a parent that a concurrent transaction
// deleted between our check and our write.
var constraintErrors = map[string]error{
	"organizations_slug":              auth.ErrOrganizationSlugUsed,
	"organizations_external_id":       auth.ErrOrganizationExtIDUsed,
	"members_email":                   auth.ErrDuplicateMemberEmail,
	"members_external_id":             auth.ErrDuplicateMemberExtID,
	"totp_registrations_member":       auth.ErrActiveTOTPExists,
	"organizations_project_fk":        auth.ErrProjectNotFound,
	"signing_keys_project_fk":         auth.ErrProjectNotFound,
	"members_organization_fk":         auth.ErrOrganizationNotFound,
	"passwords_member_fk":             auth.ErrMemberNotFound,
	"totp_registrations_member_fk":    auth.ErrMemberNotFound,
	"sessions_member_fk":              auth.ErrMemberNotFound,
	"intermediate_sessions_member_fk": auth.ErrMemberNotFound,
	"recovery_codes_registration_fk":  auth.ErrTOTPNotFound,
}

// translate turns the driver errors that have a domain meaning into domain errors, by SQLSTATE
// and constraint name, never by message text. Anything else stays a fault.
func translate(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case codeUniqueViolation, codeForeignKeyViolation:
		if de, ok := constraintErrors[pe.ConstraintName]; ok {
			return de
		}
	case codeCharacterNotInRepertoire, codeUntranslatableCharacter:
		// A NUL character, in text or as \u0000 in JSON, is the one value that passes the
		// domain's checks and that PostgreSQL cannot store.
		return auth.ErrInvalidRequestValue
	}
	return err
}

// storable reports whether PostgreSQL can take s as a text value: valid UTF-8 without NUL. A
// lookup key that is not cannot match a stored row, so lookups answer "not found" without asking.
func storable(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return false
		}
	}
	return true
}

// scanner is a pgx.Row or pgx.Rows.
type scanner interface{ Scan(dest ...any) error }

// Times are stored at whole seconds, like SQLite's Unix seconds, so both stores hand back the
// same values; the zero time is NULL.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Truncate(time.Second)
}

// at is a comparison instant: now, at the resolution times are stored with.
func at(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

func fromTS(v pgtype.Timestamptz) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return v.Time.UTC()
}

// nullString stores "" as NULL, so optional unique columns (external ids) allow many empties.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

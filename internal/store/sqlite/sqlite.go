// Package sqlite is sparekey's embedded store: one SQLite file (pure Go, modernc.org/sqlite) in
// WAL mode, with a single-connection write pool (BEGIN IMMEDIATE, synchronous=FULL) beside a
// read pool.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sparekey/sparekey/internal/auth"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// DB is the SQLite store.
type DB struct {
	path       string
	write      *pool // one connection: SQLite has one writer, and queuing here beats SQLITE_BUSY
	read       *pool
	commit     *committer    // runs the write transactions on write, in groups (commit.go)
	checkpoint *checkpointer // nil for a read-only store (checkpoint.go)

	closeOnce sync.Once
	closeErr  error
}

// newDB wires the pools; checkpoints, when not nil, is the background checkpointer's own
// connection.
func newDB(path string, write, read, checkpoints *sql.DB) *DB {
	db := &DB{path: path, write: newPool(write), read: newPool(read)}
	if checkpoints != nil {
		db.checkpoint = newCheckpointer(checkpoints)
	}
	db.commit = newCommitter(db.write, db.checkpoint.committed)
	return db
}

var _ auth.Store = (*DB)(nil)

// ErrSchemaTooNew means the database was migrated by a newer sparekey than this one.
var ErrSchemaTooNew = errors.New("the database schema is newer than this sparekey binary")

// ErrSchemaOutdated means migrations are pending and the caller asked not to apply them.
var ErrSchemaOutdated = errors.New("the database schema is older than this sparekey binary; run `sparekey migrate`")

// Open opens (creating if needed) the database at path. Every write runs with
// synchronous=FULL: an acknowledged write, a consumed code above all, survives a power cut.
func Open(ctx context.Context, path string) (*DB, error) {
	// Commit with fdatasync(2), as SQLite's own Linux builds do (the transpiled library keeps
	// the portable default, fsync). It syncs a file's data and the metadata needed to read it
	// back, its size included: everything a commit needs to survive a power cut. What it skips
	// is the file's timestamps, whose journal write fsync would wait for on every commit. The
	// setting is process-wide; every database of the process gets it, which is what we want.
	if _, err := sqlite.Fdatasync(true); err != nil && !errors.Is(err, sqlite.ErrFdatasyncUnavailable) {
		return nil, err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create database folder: %w", err)
		}
	}
	dsn := func(extra string) string {
		return "file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)" + extra
	}
	w, err := sql.Open("sqlite", dsn("&_pragma=synchronous(FULL)&_pragma=wal_autocheckpoint("+strconv.Itoa(walSafetyPages)+")&_txlock=immediate"))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn("&_pragma=query_only(1)"))
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	r.SetConnMaxIdleTime(0)
	cp, err := sql.Open("sqlite", dsn("&_pragma=synchronous(FULL)"))
	if err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	cp.SetMaxOpenConns(1)
	cp.SetMaxIdleConns(1)
	cp.SetConnMaxIdleTime(0)
	return newDB(path, w, r, cp), nil
}

// Close finishes the queued writes, checkpoints the WAL into the main file and closes the pools.
// Closing again does nothing.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.commit.stop()
		db.checkpoint.stop()
		db.read.close()
		_, _ = db.write.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
		db.closeErr = db.write.close()
	})
	return db.closeErr
}

// Path is the database file.
func (db *DB) Path() string { return db.path }

// migrations returns the embedded migrations by version (from their file name prefix).
func migrations() (map[int]string, int, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, 0, err
	}
	out, latest := map[int]string{}, 0
	for _, e := range entries {
		v, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
		if err != nil {
			return nil, 0, fmt.Errorf("migration %s: no version prefix", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, 0, err
		}
		out[v] = string(b)
		latest = max(latest, v)
	}
	return out, latest, nil
}

// SchemaVersion reports the database's schema version and the one this binary expects.
func (db *DB) SchemaVersion(ctx context.Context) (current, expected int, err error) {
	_, expected, err = migrations()
	if err != nil {
		return 0, 0, err
	}
	err = db.write.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&current)
	return current, expected, err
}

// Migrate applies pending migrations, each in its own transaction. It refuses a database
// that a newer binary migrated.
func (db *DB) Migrate(ctx context.Context) error {
	all, latest, err := migrations()
	if err != nil {
		return err
	}
	current, _, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if current > latest {
		return fmt.Errorf("%w (database %d, binary %d)", ErrSchemaTooNew, current, latest)
	}
	versions := make([]int, 0, len(all))
	for v := range all {
		if v > current {
			versions = append(versions, v)
		}
	}
	sort.Ints(versions)
	for _, v := range versions {
		err := db.tx(ctx, func(tx *txn) error {
			if _, err := tx.tx.ExecContext(context.Background(), all[v]); err != nil {
				return fmt.Errorf("migration %d: %w", v, err)
			}
			_, err := tx.tx.ExecContext(context.Background(), fmt.Sprintf(`PRAGMA user_version = %d`, v))
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// CheckSchema refuses a database whose schema differs from this binary's.
func (db *DB) CheckSchema(ctx context.Context) error {
	current, expected, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	switch {
	case current > expected:
		return fmt.Errorf("%w (database %d, binary %d)", ErrSchemaTooNew, current, expected)
	case current < expected:
		return fmt.Errorf("%w (database %d, binary %d)", ErrSchemaOutdated, current, expected)
	}
	return nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.read.db.PingContext(ctx) }

// IntegrityCheck runs SQLite's integrity check and foreign-key check.
func (db *DB) IntegrityCheck(ctx context.Context) error {
	var res string
	if err := db.read.db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res); err != nil {
		return err
	}
	if res != "ok" {
		return fmt.Errorf("integrity check: %s", res)
	}
	rows, err := db.read.db.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return err
	}
	defer rows.Close()
	if rows.Next() {
		return errors.New("foreign key check found orphaned rows")
	}
	return rows.Err()
}

// pool caches prepared statements: parsing SQL costs more than running these small queries.
type pool struct {
	db    *sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func newPool(db *sql.DB) *pool { return &pool{db: db, stmts: make(map[string]*sql.Stmt)} }

// stmt returns the prepared statement for query, preparing it on first use. The lock is not held
// while preparing: on the write pool, preparing waits for the only connection, and the
// transaction holding it needs the lock to look up its own statements.
func (p *pool) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	p.mu.Lock()
	s, ok := p.stmts[query]
	p.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := p.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if first, ok := p.stmts[query]; ok {
		s.Close() // another goroutine prepared it meanwhile; keep one
		return first, nil
	}
	p.stmts[query] = s
	return s, nil
}

func (p *pool) close() error {
	p.mu.Lock()
	for _, s := range p.stmts {
		s.Close()
	}
	clear(p.stmts)
	p.mu.Unlock()
	return p.db.Close()
}

// querier runs statements on the read pool or inside a write transaction.
type querier interface {
	query(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	queryRow(ctx context.Context, q string, args ...any) *sql.Row
	exec(ctx context.Context, q string, args ...any) (sql.Result, error)
}

func (p *pool) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	s, err := p.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

func (p *pool) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	s, err := p.stmt(ctx, q)
	if err != nil {
		return p.db.QueryRowContext(ctx, q, args...) // reports the same error through Scan
	}
	return s.QueryRowContext(ctx, args...)
}

func (p *pool) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	s, err := p.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

// txn is a write transaction. It uses the write pool's prepared statements; one it has not
// seen yet runs unprepared and is prepared after the transaction ends, because preparing on the
// pool inside the transaction would wait for the pool's only connection, which the transaction
// holds.
//
// Its statements ignore the cancellation of the context they are given (they run under
// context.Background()): the transaction may be a group of several callers' (commit.go), and
// SQLite answers an interrupted write by rolling back the whole transaction.
type txn struct {
	tx     *sql.Tx
	pool   *pool
	missed []string
}

func (t *txn) cached(q string) *sql.Stmt {
	t.pool.mu.Lock()
	s := t.pool.stmts[q]
	t.pool.mu.Unlock()
	if s == nil {
		t.missed = append(t.missed, q)
	}
	return s
}

func (t *txn) query(_ context.Context, q string, args ...any) (*sql.Rows, error) {
	ctx := context.Background()
	if s := t.cached(q); s != nil {
		return t.tx.StmtContext(ctx, s).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, q, args...)
}

func (t *txn) queryRow(_ context.Context, q string, args ...any) *sql.Row {
	ctx := context.Background()
	if s := t.cached(q); s != nil {
		return t.tx.StmtContext(ctx, s).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, q, args...)
}

func (t *txn) exec(_ context.Context, q string, args ...any) (sql.Result, error) {
	ctx := context.Background()
	if s := t.cached(q); s != nil {
		return t.tx.StmtContext(ctx, s).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, q, args...)
}

// tx runs fn in a write transaction (BEGIN IMMEDIATE), possibly grouped with other callers'
// (commit.go), and returns once it is committed, or rolled back when fn returned an error. fn
// may run more than once.
func (db *DB) tx(ctx context.Context, fn func(*txn) error) error {
	return db.commit.tx(ctx, fn)
}

// isUnique reports a uniqueness violation, by SQLite's extended result code.
func isUnique(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && (e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// Times are stored as Unix seconds; the zero time is NULL.
func unix(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Unix()
}

func fromUnix(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.Unix(v.Int64, 0).UTC()
}

// nullString stores "" as NULL, so optional unique columns (external ids) allow many empties.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// decodeStored decodes a JSON document of a column this store wrote with encoding/json: valid
// UTF-8, names exactly as tagged, no duplicates. It decodes with the v2 decoder, which gives the
// same values for such documents (numbers in `any` as float64, times as RFC 3339) in a fraction
// of the time: every request reads an organization and a member, each with documents.
func decodeStored(doc string, v any) error { return jsonv2.Unmarshal([]byte(doc), v) }

// Package postgres is sparekey's shared store: PostgreSQL through a pgx connection pool, so many
// stateless sparekey replicas can serve one database. It implements auth.Store with the semantics
// of the SQLite store; the rules that SQLite gets from its single writer come here from row locks
// (SELECT … FOR UPDATE), conditional updates and unique constraints.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sparekey/sparekey/internal/auth"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// DB is the PostgreSQL store.
type DB struct {
	pool *pgxpool.Pool
}

var _ auth.Store = (*DB)(nil)

// ErrSchemaTooNew means the database was migrated by a newer sparekey than this one.
var ErrSchemaTooNew = errors.New("the database schema is newer than this sparekey binary")

// ErrSchemaOutdated means migrations are pending and the caller asked not to apply them.
var ErrSchemaOutdated = errors.New("the database schema is older than this sparekey binary; run `sparekey migrate`")

// Options tune the connection pool.
type Options struct {
	// MaxConns caps the pool; 0 keeps pgx's default (the larger of 4 and the CPU count).
	MaxConns int32
	// StatementTimeout makes the server cancel a statement that runs longer, so a stuck query
	// cannot hold row locks and a connection forever; 0 leaves the server's setting.
	StatementTimeout time.Duration
}

// Open connects to the database named by a postgres:// URL (or a libpq key=value string).
// It does not migrate: see Migrate and CheckSchema.
func Open(ctx context.Context, connString string, opt Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// pgx's parse errors quote the connection string, and redacting its password is best
		// effort for a malformed one; say nothing of its content.
		return nil, errors.New("cannot parse the PostgreSQL connection string; expected postgres://user:password@host:port/database?sslmode=...")
	}
	return OpenConfig(ctx, cfg, opt)
}

// OpenConfig connects with a parsed pool configuration, which callers may adjust first (tests set
// RuntimeParams["search_path"] to give each test its own schema).
func OpenConfig(ctx context.Context, cfg *pgxpool.Config, opt Options) (*DB, error) {
	if opt.MaxConns > 0 {
		cfg.MaxConns = opt.MaxConns
	}
	if opt.StatementTimeout > 0 {
		// A startup parameter is the same session setting an AfterConnect SET would make,
		// without a round trip per new connection.
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(opt.StatementTimeout.Milliseconds(), 10)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	return &DB{pool: pool}, nil
}

// Close closes the pool, waiting for borrowed connections to come back.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.pool.Ping(ctx) }

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

// querier is a pool, connection or transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// schemaVersion reads the newest applied migration; a schema without the bookkeeping table is
// at version 0. The table is looked for in the current schema only, and one that another tool
// made (golang-migrate and Rails use the same name, without applied_at) is refused rather than
// read or written.
func schemaVersion(ctx context.Context, q querier) (int, error) {
	var schema, exists, ours bool
	if err := q.QueryRow(ctx, `SELECT current_schema() IS NOT NULL, t IS NOT NULL,
			EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = t AND attname = 'applied_at' AND NOT attisdropped)
		FROM to_regclass(format('%I.schema_migrations', coalesce(current_schema(), ''))) AS t`).Scan(&schema, &exists, &ours); err != nil {
		return 0, err
	}
	if !schema {
		return 0, errNoSchema
	}
	if !exists {
		return 0, nil
	}
	if !ours {
		return 0, errors.New("the schema_migrations table of this schema belongs to another tool: give sparekey a schema (search_path=... in the URL) or a database of its own")
	}
	var v int
	err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

var errNoSchema = errors.New("no schema of the search_path exists: create it, or fix search_path in the URL")

// SchemaVersion reports the database's schema version and the one this binary expects.
func (db *DB) SchemaVersion(ctx context.Context) (current, expected int, err error) {
	_, expected, err = migrations()
	if err != nil {
		return 0, 0, err
	}
	current, err = schemaVersion(ctx, db.pool)
	return current, expected, err
}

// migrationLockClass is the first key of the advisory lock that serialises migrations; the
// second is a hash of the schema, so replicas migrating one schema queue up while separate
// schemas (one per test) do not wait on each other.
const migrationLockClass = 0x5370_4b79 // "SpKy"

// Migrate applies pending migrations, each in its own transaction under a transaction-scoped
// advisory lock: replicas that start together apply each migration once, the others wait and
// then find nothing to do. It refuses a database that a newer binary migrated.
func (db *DB) Migrate(ctx context.Context) error {
	all, latest, err := migrations()
	if err != nil {
		return err
	}
	for {
		done, err := db.migrateOne(ctx, all, latest)
		if err != nil || done {
			return err
		}
	}
}

// migrateOne applies the next pending migration and reports whether none was left.
func (db *DB) migrateOne(ctx context.Context, all map[int]string, latest int) (done bool, err error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// Waiting for another replica's migration, and a migration itself, may outlast the
	// statement timeout meant for requests.
	if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
		return false, err
	}
	// The lock's key needs an existing schema. Nothing else is looked up before the lock: a
	// catalog lookup of schema_migrations here would be cached as "no such table" and still
	// answer so after the replica that held the lock has created it.
	var schema bool
	if err := tx.QueryRow(ctx, `SELECT current_schema() IS NOT NULL`).Scan(&schema); err != nil {
		return false, err
	}
	if !schema {
		return false, errNoSchema
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))`, int32(migrationLockClass)); err != nil {
		return false, fmt.Errorf("take the migration lock: %w", err)
	}
	current, err := schemaVersion(ctx, tx)
	if err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return false, err
	}
	if current > latest {
		return false, fmt.Errorf("%w (database %d, binary %d)", ErrSchemaTooNew, current, latest)
	}
	pending := make([]int, 0, len(all))
	for v := range all {
		if v > current {
			pending = append(pending, v)
		}
	}
	if len(pending) == 0 {
		return true, tx.Commit(ctx)
	}
	sort.Ints(pending)
	v := pending[0]
	if _, err := tx.Exec(ctx, all[v]); err != nil {
		return false, fmt.Errorf("migration %d: %w", v, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v); err != nil {
		return false, err
	}
	return false, tx.Commit(ctx)
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

// IntegrityCheck verifies what the foreign keys do not: every constraint of the schema is in
// force (none was added NOT VALID or disabled by hand), and the project and organization that
// members, sessions and intermediate sessions carry match the rows they belong to.
func (db *DB) IntegrityCheck(ctx context.Context) error {
	if err := db.CheckSchema(ctx); err != nil {
		return err
	}
	var unvalidated int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
		WHERE n.nspname = current_schema() AND NOT c.convalidated`).Scan(&unvalidated); err != nil {
		return err
	}
	if unvalidated > 0 {
		return fmt.Errorf("integrity check: %d constraints are not validated", unvalidated)
	}
	var disabled int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid JOIN pg_namespace n ON n.oid = r.relnamespace
		WHERE n.nspname = current_schema() AND t.tgisinternal AND t.tgenabled = 'D'`).Scan(&disabled); err != nil {
		return err
	}
	if disabled > 0 {
		return fmt.Errorf("integrity check: %d foreign-key triggers are disabled", disabled)
	}
	var mismatched int
	if err := db.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM members m JOIN organizations o ON o.id = m.organization_id WHERE m.project_id <> o.project_id) +
		(SELECT count(*) FROM sessions s JOIN members m ON m.id = s.member_id WHERE s.project_id <> m.project_id OR s.organization_id <> m.organization_id) +
		(SELECT count(*) FROM intermediate_sessions i JOIN members m ON m.id = i.member_id WHERE i.project_id <> m.project_id OR i.organization_id <> m.organization_id)`).Scan(&mismatched); err != nil {
		return err
	}
	if mismatched > 0 {
		return fmt.Errorf("integrity check: %d rows name a project or organization other than their member's", mismatched)
	}
	return nil
}

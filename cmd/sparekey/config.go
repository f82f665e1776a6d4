package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/secret"
	"github.com/sparekey/sparekey/internal/store/postgres"
	"github.com/sparekey/sparekey/internal/store/sqlite"
)

const defaultDB = "sqlite:./sparekey-data/sparekey.db"

// newFlagSet makes a flag set whose errors go back to the caller rather than exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// envName is a flag's environment twin: --lock-threshold → SPAREKEY_LOCK_THRESHOLD.
func envName(flagName string) string {
	return "SPAREKEY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags parses args, then fills each flag not given on the command line from its
// environment twin. A bad environment value is reported with the variable's name.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()} // an unknown flag or a bad value: exit code 2
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if serr := f.Value.Set(v); serr != nil {
				err = fmt.Errorf("%s=%q: %v", envName(f.Name), v, serr)
			}
		}
	})
	return err
}

// database is what the commands need from an opened store, whichever backend holds it.
type database interface {
	auth.Store
	Migrate(ctx context.Context) error
	CheckSchema(ctx context.Context) error
	SchemaVersion(ctx context.Context) (current, expected int, err error)
	Close() error
}

var (
	_ database = (*sqlite.DB)(nil)
	_ database = (*postgres.DB)(nil)
)

// storageFlags are the flags every command that opens the database shares.
type storageFlags struct {
	db                 string
	masterKey          string
	masterKeyFile      string
	dbMaxConns         int
	dbStatementTimeout time.Duration
	migrate            bool
}

func (f *storageFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.db, "db", defaultDB, "database: sqlite:PATH or postgres://user:password@host:port/database")
	fs.StringVar(&f.masterKey, "master-key", "", "master key: 32 bytes as 64 hex characters or base64 (prefer --master-key-file)")
	fs.StringVar(&f.masterKeyFile, "master-key-file", "", "file holding the master key")
	fs.IntVar(&f.dbMaxConns, "db-max-conns", 16, "PostgreSQL: connections in the pool")
	fs.DurationVar(&f.dbStatementTimeout, "db-statement-timeout", 10*time.Second, "PostgreSQL: the server cancels a statement that runs longer (0 keeps the server's setting)")
}

// registerMigrate adds --migrate, for the commands that otherwise refuse a PostgreSQL schema
// older than the binary.
func (f *storageFlags) registerMigrate(fs *flag.FlagSet) {
	fs.BoolVar(&f.migrate, "migrate", false, "PostgreSQL: apply pending migrations before starting (SQLite always does)")
}

// isPostgres reports whether a --db setting names a PostgreSQL database.
func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// displayDB is the --db setting as it may be logged or shown: a PostgreSQL URL loses its
// password, in the user part or in the query, and anything else that may hold one is hidden.
func displayDB(db string) string {
	if !isPostgres(db) {
		if strings.Contains(db, "@") || strings.Contains(strings.ToLower(db), "password") {
			return "(hidden, as it may hold a password)"
		}
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		return "postgres://(hidden: not a valid URL)"
	}
	q := u.Query()
	for _, k := range []string{"password", "sslpassword"} {
		if q.Has(k) {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// sqlitePath returns the file of a sqlite: database setting.
func (f *storageFlags) sqlitePath() (string, error) {
	switch {
	case strings.HasPrefix(f.db, "sqlite:"):
		p := strings.TrimPrefix(f.db, "sqlite:")
		if p == "" {
			return "", usageError{"--db sqlite: needs a file path, e.g. sqlite:./sparekey-data/sparekey.db"}
		}
		return p, nil
	case isPostgres(f.db):
		return "", errors.New("--db names a PostgreSQL database, which has no data folder")
	}
	return "", usageError{fmt.Sprintf("--db %q: expected sqlite:PATH or postgres://user:password@host:port/database", displayDB(f.db))}
}

// openStore opens the database and brings its schema to this binary's version: SQLite always
// migrates; PostgreSQL migrates when migratePostgres is set and otherwise refuses a schema of
// another version, because with many replicas migrating is a deliberate step.
func (f *storageFlags) openStore(ctx context.Context, migratePostgres bool) (database, error) {
	if isPostgres(f.db) {
		return f.openPostgres(ctx, migratePostgres)
	}
	path, err := f.sqlitePath()
	if err != nil {
		return nil, err
	}
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func (f *storageFlags) openPostgres(ctx context.Context, migrate bool) (database, error) {
	if f.dbMaxConns < 1 || f.dbMaxConns > 10000 {
		return nil, usageError{fmt.Sprintf("--db-max-conns %d: expected 1 to 10000", f.dbMaxConns)}
	}
	if f.dbStatementTimeout < 0 {
		return nil, usageError{"--db-statement-timeout must not be negative"}
	}
	db, err := postgres.Open(ctx, f.db, postgres.Options{MaxConns: int32(f.dbMaxConns), StatementTimeout: f.dbStatementTimeout})
	if err != nil {
		return nil, err
	}
	if migrate {
		err = db.Migrate(ctx)
	} else {
		err = schemaRefusal(ctx, db)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// schemaRefusal explains a PostgreSQL schema of another version than the binary's.
func schemaRefusal(ctx context.Context, db *postgres.DB) error {
	err := db.CheckSchema(ctx)
	switch {
	case errors.Is(err, postgres.ErrSchemaOutdated):
		current, expected, _ := db.SchemaVersion(ctx)
		return fmt.Errorf("the PostgreSQL schema is at version %d and this sparekey needs version %d: "+
			"run `sparekey migrate --db ...` first, or start with --migrate (%s=true) to apply the migrations now", current, expected, envName("migrate"))
	case errors.Is(err, postgres.ErrSchemaTooNew):
		current, expected, _ := db.SchemaVersion(ctx)
		return fmt.Errorf("the PostgreSQL schema is at version %d, newer than this sparekey's %d: "+
			"a newer sparekey migrated it; run that version (migrations are forward-only)", current, expected)
	}
	return err
}

// errNoMasterKeyPostgres is the refusal to run on PostgreSQL without a configured key: there is
// no data folder to keep a generated one in, and every replica needs the same key.
var errNoMasterKeyPostgres = fmt.Errorf("PostgreSQL needs a master key: set %s to 64 hex characters, or --master-key-file (%s) to a file holding them; "+
	"generate one with `openssl rand -hex 32`, keep it safe, and give every replica the same key",
	envName("master-key"), envName("master-key-file"))

// checkMasterKeySource refuses a PostgreSQL database without a configured master key before
// anything connects.
func (f *storageFlags) checkMasterKeySource() error {
	if isPostgres(f.db) && f.masterKey == "" && f.masterKeyFile == "" {
		return errNoMasterKeyPostgres
	}
	return nil
}

// keyring resolves the master key: --master-key, then --master-key-file, then (SQLite only) the
// file master.key beside the database, which a development server creates on its first start.
// It never falls back silently: a database with data and no key is a refusal.
func (f *storageFlags) keyring(ctx context.Context, store auth.Store, stderr io.Writer) (*secret.Keyring, error) {
	var raw, source string
	switch {
	case f.masterKey != "":
		raw, source = f.masterKey, "--master-key / "+envName("master-key")
	case f.masterKeyFile != "":
		b, err := os.ReadFile(f.masterKeyFile)
		if err != nil {
			return nil, fmt.Errorf("read --master-key-file: %w", err)
		}
		raw, source = string(b), f.masterKeyFile
	case isPostgres(f.db):
		return nil, errNoMasterKeyPostgres
	default:
		path, err := f.sqlitePath()
		if err != nil {
			return nil, err
		}
		keyFile := filepath.Join(filepath.Dir(path), "master.key")
		b, err := os.ReadFile(keyFile)
		switch {
		case err == nil:
			raw, source = string(b), keyFile
		case errors.Is(err, os.ErrNotExist):
			projects, perr := store.Projects(ctx)
			if perr != nil {
				return nil, perr
			}
			if len(projects) > 0 {
				return nil, fmt.Errorf("the database holds data but no master key was given and %s does not exist; set %s or --master-key-file to the key it was created with", keyFile, envName("master-key"))
			}
			key, gerr := secret.NewMasterKey()
			if gerr != nil {
				return nil, gerr
			}
			if werr := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); werr != nil {
				return nil, fmt.Errorf("write generated master key: %w", werr)
			}
			fmt.Fprintf(stderr, "WARNING: no master key configured; generated one into %s (mode 0600).\n"+
				"WARNING: anyone who can read that file can decrypt this database. For production, set %s or --master-key-file.\n", keyFile, envName("master-key"))
			raw, source = key, keyFile
		default:
			return nil, fmt.Errorf("read %s: %w", keyFile, err)
		}
	}
	key, err := secret.ParseMasterKey(raw)
	if err != nil {
		return nil, fmt.Errorf("master key from %s: %w", source, err)
	}
	return secret.NewKeyring(key)
}

// domainFlags are the rules a deployment may tune.
type domainFlags struct {
	codeLength    int
	lockThreshold int
	lockDuration  time.Duration
}

func (f *domainFlags) register(fs *flag.FlagSet) {
	d := auth.DefaultConfig()
	fs.IntVar(&f.codeLength, "recovery-code-length", d.CodeSymbols, "symbols per issued recovery code: 12 or 16")
	fs.IntVar(&f.lockThreshold, "lock-threshold", d.Lock.Threshold, "consecutive failed MFA attempts that lock a member")
	fs.DurationVar(&f.lockDuration, "lock-duration", d.Lock.Duration, "how long a member lock lasts")
}

func (f *domainFlags) config() (auth.Config, error) {
	c := auth.DefaultConfig()
	c.CodeSymbols = f.codeLength
	c.Lock = auth.LockPolicy{Threshold: f.lockThreshold, Duration: f.lockDuration}
	if err := c.Validate(); err != nil {
		return c, usageError{err.Error()}
	}
	return c, nil
}

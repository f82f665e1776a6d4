package main

import (
	"bytes"
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

	"github.com/sparekey/sparekey/internal/api"
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
// environment twin (or, for a secret, from the file its NAME_FILE twin names). A bad
// environment value is reported with the variable's name.
func parseFlags(fs *flag.FlagSet, args []string) error {
	_, err := parseSettings(fs, args)
	return err
}

// secretSettings are the flags, of any command, whose values are secrets (a database URL may
// hold a password). A secret is never printed, and besides NAME it may come from the file
// NAME_FILE names (the way Docker and Kubernetes hand out secrets), unless the command has a
// --NAME-file flag of its own (--master-key-file), whose twin NAME_FILE already is.
var secretSettings = map[string]bool{
	"master-key": true, "old-master-keys": true, "db": true, "secret": true, // serve, migrate, project create, keys, bench, the client commands
	"password": true, "recovery-code": true, "session-token": true, "session-jwt": true, "intermediate-session-token": true, // client commands
}

// settingSources says where each flag's value came from: "command line", an environment
// variable's name, or "default".
type settingSources map[string]string

// parseSettings is parseFlags that also reports where each value came from. The command line
// wins over NAME, which wins over NAME_FILE; setting both NAME and NAME_FILE is a mistake.
func parseSettings(fs *flag.FlagSet, args []string) (settingSources, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err.Error()} // an unknown flag or a bad value: exit code 2
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	sources := settingSources{}
	fs.Visit(func(f *flag.Flag) { sources[f.Name] = "command line" })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if sources[f.Name] != "" {
			return
		}
		sources[f.Name] = "default"
		env := envName(f.Name)
		v, ok := os.LookupEnv(env)
		if file, fromFile := secretFile(fs, f.Name); fromFile {
			if ok {
				errs = append(errs, usageError{fmt.Sprintf("both %s and %s are set; set one", env, env+"_FILE")})
				return
			}
			b, err := os.ReadFile(file)
			if err != nil {
				errs = append(errs, usageError{fmt.Sprintf("%s_FILE: %v", env, err)})
				return
			}
			v, ok, env = trimNewline(string(b)), true, env+"_FILE"
		}
		if !ok {
			return
		}
		if err := f.Value.Set(v); err != nil {
			shown := fmt.Sprintf("=%q", v)
			if secretSettings[f.Name] {
				shown = "" // the value is a secret, even when it is a wrong one
			}
			errs = append(errs, usageError{fmt.Sprintf("%s%s: %v", env, shown, err)})
			return
		}
		sources[f.Name] = env
	})
	return sources, errors.Join(errs...)
}

// secretFile returns the file that NAME_FILE names for a secret flag without a --NAME-file flag.
func secretFile(fs *flag.FlagSet, name string) (string, bool) {
	if !secretSettings[name] || fs.Lookup(name+"-file") != nil {
		return "", false
	}
	return os.LookupEnv(envName(name) + "_FILE")
}

// trimNewline drops the one line ending an editor or `echo` leaves at the end of a secret file.
func trimNewline(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return strings.TrimSuffix(s, "\r")
}

// settingError is an invalid setting, named by its flag and its environment twin, so the
// message fits whichever the operator used: --lock-threshold (SPAREKEY_LOCK_THRESHOLD) must be
// at least 1, not 0.
func settingError(name, format string, args ...any) error {
	return usageError{fmt.Sprintf("--%s (%s) ", name, envName(name)) + fmt.Sprintf(format, args...)}
}

// database is what the commands need from an opened store, whichever backend holds it.
type database interface {
	auth.Store
	api.Database     // Probe and CheckSchema, for /readyz
	api.PoolReporter // for metrics
	Migrate(ctx context.Context) error
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
	oldMasterKeys      string
	dbMaxConns         int
	dbStatementTimeout time.Duration
	migrate            bool
}

func (f *storageFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.db, "db", defaultDB, "database: sqlite:PATH or postgres://user:password@host:port/database")
	fs.StringVar(&f.masterKey, "master-key", "", "master key: 32 bytes as 64 hex characters or base64 (prefer --master-key-file)")
	fs.StringVar(&f.masterKeyFile, "master-key-file", "", "file holding the master key")
	fs.StringVar(&f.oldMasterKeys, "old-master-keys", "", "during a master-key rotation: comma-separated keys that only open data (never seal)")
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

// validate checks the storage settings without connecting, naming the setting at fault.
func (f *storageFlags) validate() error {
	var errs []error
	switch {
	case isPostgres(f.db):
		if _, err := url.Parse(f.db); err != nil {
			errs = append(errs, settingError("db", "is not a valid postgres:// URL"))
		}
	case strings.HasPrefix(f.db, "sqlite:"):
		if strings.TrimPrefix(f.db, "sqlite:") == "" {
			errs = append(errs, settingError("db", "sqlite: needs a file path, e.g. sqlite:./sparekey-data/sparekey.db"))
		}
	default:
		errs = append(errs, settingError("db", "must be sqlite:PATH or postgres://user:password@host:port/database, not %q", displayDB(f.db)))
	}
	if f.dbMaxConns < 1 || f.dbMaxConns > 10000 {
		errs = append(errs, settingError("db-max-conns", "must be from 1 to 10000, not %d", f.dbMaxConns))
	}
	if f.dbStatementTimeout < 0 {
		errs = append(errs, settingError("db-statement-timeout", "must not be negative, not %s", f.dbStatementTimeout))
	}
	return errors.Join(errs...)
}

// validateMasterKey checks a configured master key without printing it: a key that does not
// parse, a file that cannot be read, or both settings at once; and the old master keys.
func (f *storageFlags) validateMasterKey() error {
	if _, err := f.parseOldMasterKeys(); err != nil {
		return err
	}
	switch {
	case f.masterKey != "" && f.masterKeyFile != "":
		return usageError{fmt.Sprintf("both --master-key (%s) and --master-key-file (%s) are set; set one", envName("master-key"), envName("master-key-file"))}
	case f.masterKey != "":
		if _, err := secret.ParseMasterKey(f.masterKey); err != nil {
			return settingError("master-key", "is not a master key: %v", err)
		}
	case f.masterKeyFile != "":
		b, err := os.ReadFile(f.masterKeyFile)
		if err != nil {
			return settingError("master-key-file", "cannot be read: %v", err)
		}
		if _, err := secret.ParseMasterKey(string(b)); err != nil {
			return settingError("master-key-file", "%s does not hold a master key: %v", f.masterKeyFile, err)
		}
	}
	return nil
}

// parseOldMasterKeys parses --old-master-keys: keys that open data sealed under them but never
// seal, as during a master-key rotation. A key that does not parse is named by its position only.
func (f *storageFlags) parseOldMasterKeys() ([][]byte, error) {
	if strings.TrimSpace(f.oldMasterKeys) == "" {
		return nil, nil
	}
	var keys [][]byte
	for i, s := range strings.Split(f.oldMasterKeys, ",") {
		k, err := secret.ParseMasterKey(s)
		if err != nil {
			return nil, settingError("old-master-keys", "key %d of %d is not a master key: %v", i+1, len(strings.Split(f.oldMasterKeys, ",")), err)
		}
		keys = append(keys, k)
	}
	return keys, nil
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
	if err := f.validate(); err != nil {
		return nil, err
	}
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

// checkMasterKeySource refuses a configured master key that cannot work, and a PostgreSQL
// database without one, before anything connects.
func (f *storageFlags) checkMasterKeySource() error {
	if err := f.validateMasterKey(); err != nil {
		return err
	}
	if isPostgres(f.db) && f.masterKey == "" && f.masterKeyFile == "" {
		return errNoMasterKeyPostgres
	}
	return nil
}

// errNoKeyFile means no master key is configured and the SQLite database has no master.key
// file beside it: a development server's first start, or a database moved without its key.
var errNoKeyFile = errors.New("no master key configured")

// findMasterKey reads the configured master key: --master-key, then --master-key-file, then
// (SQLite only) the file master.key beside the database. source says where it came from.
func (f *storageFlags) findMasterKey() (raw, source, keyFile string, err error) {
	switch {
	case f.masterKey != "":
		return f.masterKey, "--master-key / " + envName("master-key"), "", nil
	case f.masterKeyFile != "":
		b, err := os.ReadFile(f.masterKeyFile)
		if err != nil {
			return "", "", "", fmt.Errorf("read --master-key-file: %w", err)
		}
		return string(b), f.masterKeyFile, "", nil
	case isPostgres(f.db):
		return "", "", "", errNoMasterKeyPostgres
	}
	path, err := f.sqlitePath()
	if err != nil {
		return "", "", "", err
	}
	keyFile = filepath.Join(filepath.Dir(path), "master.key")
	b, err := os.ReadFile(keyFile)
	switch {
	case err == nil:
		return string(b), keyFile, keyFile, nil
	case errors.Is(err, os.ErrNotExist):
		return "", "", keyFile, errNoKeyFile
	}
	return "", "", keyFile, fmt.Errorf("read %s: %w", keyFile, err)
}

// keyring resolves the master key (findMasterKey). Without one, a SQLite database with no data
// gets a generated key in master.key beside it, as a development server's first start does. It
// never falls back silently: a database with data and no key is a refusal.
func (f *storageFlags) keyring(ctx context.Context, store auth.Store, stderr io.Writer) (*secret.Keyring, error) {
	raw, source, keyFile, err := f.findMasterKey()
	if errors.Is(err, errNoKeyFile) {
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
		raw, source, err = key, keyFile, nil
	}
	if err != nil {
		return nil, err
	}
	key, err := secret.ParseMasterKey(raw)
	if err != nil {
		return nil, fmt.Errorf("master key from %s: %w", source, err)
	}
	old, err := f.parseOldMasterKeys()
	if err != nil {
		return nil, err
	}
	for _, o := range old {
		if bytes.Equal(o, key) {
			return nil, settingError("old-master-keys", "holds the master key itself; list only the keys being rotated away from")
		}
	}
	return secret.NewKeyring(key, old...)
}

// domainFlags are the rules a deployment may tune.
type domainFlags struct {
	codeLength        int
	lockThreshold     int
	lockDuration      time.Duration
	lowCodesThreshold int
	codeStorage       string
	keyCacheTTL       time.Duration
	eventRetention    time.Duration
}

func (f *domainFlags) register(fs *flag.FlagSet) {
	d := auth.DefaultConfig()
	fs.IntVar(&f.codeLength, "recovery-code-length", d.CodeSymbols, "symbols per issued recovery code: 12 or 16")
	fs.IntVar(&f.lockThreshold, "lock-threshold", d.Lock.Threshold, "consecutive failed MFA attempts that lock a member")
	fs.DurationVar(&f.lockDuration, "lock-duration", d.Lock.Duration, "how long a member lock lasts")
	fs.IntVar(&f.lowCodesThreshold, "low-codes-threshold", d.LowCodesThreshold, "a recover leaving this many codes or fewer (and more than 0) writes a recovery_codes.low event; 0 turns it off")
	fs.StringVar(&f.codeStorage, "code-storage", d.CodeStorage, "encrypted (GET shows unused codes) or strict (keyed hashes only; codes are shown once, when issued)")
	fs.DurationVar(&f.eventRetention, "event-retention", d.EventRetention, "how long audit events are kept (0: for ever; else at least 24h)")
	fs.DurationVar(&f.keyCacheTTL, "signing-key-cache-ttl", d.KeyCacheTTL, "how long a replica trusts its cached signing keys; keys rotate-signing's publish delay must be at least this")
}

// config validates the settings, naming each one at fault, and returns the domain's Config.
func (f *domainFlags) config() (auth.Config, error) {
	var errs []error
	if f.codeLength != secret.CodeSymbols && f.codeLength != secret.LongCodeSymbols {
		errs = append(errs, settingError("recovery-code-length", "must be %d or %d, not %d", secret.CodeSymbols, secret.LongCodeSymbols, f.codeLength))
	}
	if f.lockThreshold < 1 {
		errs = append(errs, settingError("lock-threshold", "must be at least 1, not %d", f.lockThreshold))
	}
	if f.lockDuration < time.Second {
		errs = append(errs, settingError("lock-duration", "must be at least 1s, not %s", f.lockDuration))
	}
	if f.lowCodesThreshold < 0 || f.lowCodesThreshold > 20 {
		errs = append(errs, settingError("low-codes-threshold", "must be 0 to 20, not %d", f.lowCodesThreshold))
	}
	if f.codeStorage != auth.CodeStorageEncrypted && f.codeStorage != auth.CodeStorageStrict {
		errs = append(errs, settingError("code-storage", "must be %s or %s, not %q", auth.CodeStorageEncrypted, auth.CodeStorageStrict, f.codeStorage))
	}
	if f.keyCacheTTL < time.Second || f.keyCacheTTL > time.Hour {
		errs = append(errs, settingError("signing-key-cache-ttl", "must be from 1s to 1h, not %s", f.keyCacheTTL))
	}
	if f.eventRetention != 0 && f.eventRetention < auth.MinEventRetention {
		errs = append(errs, settingError("event-retention", "must be 0 (keep for ever) or at least 24h, not %s", f.eventRetention))
	}
	c := auth.DefaultConfig()
	c.CodeSymbols = f.codeLength
	c.EventRetention = f.eventRetention
	c.Lock = auth.LockPolicy{Threshold: f.lockThreshold, Duration: f.lockDuration}
	c.LowCodesThreshold = f.lowCodesThreshold
	c.CodeStorage = f.codeStorage
	c.KeyCacheTTL = f.keyCacheTTL
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil { // the domain's own rules, should they grow
		return c, usageError{err.Error()}
	}
	return c, nil
}

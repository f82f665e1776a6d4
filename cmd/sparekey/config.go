package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/secret"
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
		return err
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

// storageFlags are the flags every command that opens the database shares.
type storageFlags struct {
	db            string
	masterKey     string
	masterKeyFile string
}

func (f *storageFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.db, "db", defaultDB, "database: sqlite:PATH")
	fs.StringVar(&f.masterKey, "master-key", "", "master key: 32 bytes as 64 hex characters or base64 (prefer --master-key-file)")
	fs.StringVar(&f.masterKeyFile, "master-key-file", "", "file holding the master key")
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
	case strings.HasPrefix(f.db, "postgres://"), strings.HasPrefix(f.db, "postgresql://"):
		return "", usageError{"--db: PostgreSQL is not supported by this build yet; use sqlite:PATH"}
	}
	return "", usageError{fmt.Sprintf("--db %q: expected sqlite:PATH", f.db)}
}

// openStore opens and (when migrate is set) migrates the database.
func (f *storageFlags) openStore(ctx context.Context, migrate bool) (*sqlite.DB, error) {
	path, err := f.sqlitePath()
	if err != nil {
		return nil, err
	}
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	if migrate {
		err = db.Migrate(ctx)
	} else {
		err = db.CheckSchema(ctx)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
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

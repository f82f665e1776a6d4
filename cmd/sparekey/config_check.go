package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/secret"
	"github.com/sparekey/sparekey/internal/store/postgres"
	"github.com/sparekey/sparekey/internal/store/sqlite"
)

const configCheckUsage = `Usage: sparekey config check [serve's flags] [--offline]

Validates a serve configuration as serve would, from the same flags and SPAREKEY_* variables,
and prints every setting's effective value and where it came from (command line, environment,
*_FILE, default). Secrets are never printed: a master key shows as "set", a database URL without
its password.

Unless --offline, it then looks at the database without changing it: SQLite is opened read-only
(a missing file is reported, not created) and PostgreSQL through one short connection. It reports
the schema version against this binary's and whether the master key opens the data. It opens no
listener and migrates nothing.

Exit status: 0 when serve would start, 1 when a check fails, 2 when a setting is invalid.

Flags: every flag of 'sparekey serve' (see 'sparekey help serve'), and
  --offline                    check the settings only; do not open the database
                               (SPAREKEY_OFFLINE)

Example:
  SPAREKEY_DB_FILE=/run/secrets/db sparekey config check --log-format json
`

// configCheckCommand is `sparekey config check`.
func configCheckCommand() command {
	return command{name: "config check", summary: "validate a serve configuration and print its effective values", usage: configCheckUsage, run: configCheck}
}

func configCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		f       serveFlags
		offline bool
	)
	fs := newFlagSet("config check", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, configCheckUsage) }
	f.register(fs)
	fs.BoolVar(&offline, "offline", false, "do not open the database")
	sources, err := parseSettings(fs, args)
	if err != nil {
		return err
	}
	printSettings(stdout, fs, sources, "offline")
	if err := f.validate(); err != nil {
		fmt.Fprintf(stdout, "\nsettings: INVALID\n")
		return err
	}
	fmt.Fprintf(stdout, "\nsettings: ok\n")
	if offline {
		return nil
	}
	if err := checkDatabase(ctx, &f, stdout); err != nil {
		return fmt.Errorf("configuration check failed: %w", err)
	}
	return nil
}

// printSettings writes one row per flag: its name, environment twin, effective value (secrets
// masked) and source.
func printSettings(w io.Writer, fs *flag.FlagSet, sources settingSources, skip ...string) {
	var flags []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		for _, s := range skip {
			if f.Name == s {
				return
			}
		}
		flags = append(flags, f)
	})
	sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SETTING\tENVIRONMENT\tVALUE\tFROM")
	for _, f := range flags {
		fmt.Fprintf(tw, "--%s\t%s\t%s\t%s\n", f.Name, envName(f.Name), shownValue(f), sources[f.Name])
	}
	tw.Flush()
}

// shownValue is a flag's value as it may be printed: a database URL without its password, any
// other secret only as set or not.
func shownValue(f *flag.Flag) string {
	v := f.Value.String()
	switch {
	case f.Name == "db":
		return displayDB(v)
	case secretSettings[f.Name] && v != "":
		return "set (hidden)"
	case v == "":
		return `""`
	}
	return v
}

// checkDatabase opens the database without changing it and reports its schema version and
// whether the master key opens its data. It returns the first problem that would stop serve.
func checkDatabase(ctx context.Context, f *serveFlags, w io.Writer) error {
	var (
		store database
		err   error
	)
	if isPostgres(f.db) {
		if err := f.checkMasterKeySource(); err != nil {
			return err
		}
		pg, err := postgres.Open(ctx, f.db, postgres.Options{MaxConns: 1, StatementTimeout: f.dbStatementTimeout})
		if err != nil {
			return err
		}
		store = pg
	} else {
		path, _ := f.sqlitePath() // validated
		if _, serr := os.Stat(path); errors.Is(serr, os.ErrNotExist) {
			fmt.Fprintf(w, "database: %s does not exist yet; serve will create it", path)
			if _, _, _, kerr := f.findMasterKey(); errors.Is(kerr, errNoKeyFile) {
				fmt.Fprint(w, ", and generate a master key beside it")
			}
			fmt.Fprintln(w)
			return nil
		}
		store, err = sqlite.OpenReadOnly(ctx, path)
		if err != nil {
			return err
		}
	}
	defer store.Close()

	current, expected, err := store.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("read the schema version: %w", err)
	}
	switch {
	case current == expected:
		fmt.Fprintf(w, "database: reachable; schema at version %d, this sparekey's\n", current)
	case current > expected:
		return fmt.Errorf("the schema is at version %d, newer than this sparekey's %d: run the sparekey that migrated it", current, expected)
	case !isPostgres(f.db) || f.migrate:
		fmt.Fprintf(w, "database: reachable; schema at version %d, serve will migrate it to %d\n", current, expected)
	default:
		return fmt.Errorf("the schema is at version %d and this sparekey needs %d: run `sparekey migrate` first, or give --migrate (%s=true)", current, expected, envName("migrate"))
	}
	if current == 0 {
		fmt.Fprintln(w, "master key: nothing to check, the database is empty")
		return nil
	}

	raw, source, _, err := f.findMasterKey()
	if errors.Is(err, errNoKeyFile) {
		projects, perr := store.Projects(ctx)
		if perr != nil {
			return perr
		}
		if len(projects) > 0 {
			return fmt.Errorf("the database holds data but no master key is configured: set %s or --master-key-file", envName("master-key"))
		}
		fmt.Fprintln(w, "master key: none configured; serve will generate one (set one for production)")
		return nil
	}
	if err != nil {
		return err
	}
	key, err := secret.ParseMasterKey(raw)
	if err != nil {
		return fmt.Errorf("master key from %s: %w", source, err)
	}
	// During a master-key rotation the data is under the old keys and the new one alike.
	old, err := f.parseOldMasterKeys()
	if err != nil {
		return err
	}
	keys, err := secret.NewKeyring(key, old...)
	if err != nil {
		return err
	}
	cfg, _ := f.domainFlags.config() // validated
	svc, err := auth.NewService(store, keys, cfg, nil)
	if err != nil {
		return err
	}
	if err := svc.CheckMasterKey(ctx); err != nil {
		return err
	}
	projects, err := store.Projects(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "master key: from %s; opens the data of %d %s\n", source, len(projects), plural(len(projects), "project", "projects"))
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

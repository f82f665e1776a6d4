package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/secret"
)

// The key commands rotate keys while the servers keep serving: they work on the database, and
// the servers pick the changes up by themselves (signing keys) or already hold both keys (the
// master key). README "Key rotation" has both procedures.

const keysRotateSigningUsage = `Usage: sparekey keys rotate-signing [--db ...] [--project-id ID] [--signing-key-publish-delay D] [--signing-key-grace D]

Adds a new session-JWT signing key to every project of the database (or to --project-id's) while
the servers run; nothing restarts. The new key is listed in the JWKS at once (every replica
reloads its keys within its --signing-key-cache-ttl, 1m by default) and starts signing after the
publish delay, on every replica at the same second. The key it replaces keeps verifying, and
stays in the JWKS, for the grace after that; then it retires: it leaves the JWKS and JWTs naming
it are refused (400 unable_to_parse_session_jwt). Keys retired before now are deleted.

The publish delay must be at least the servers' --signing-key-cache-ttl, and the grace at least
10m (twice the 5-minute JWT lifetime); shorter ones are refused unless --unsafe-short-times.

Flags (each also read from its SPAREKEY_* environment twin; a secret also from *_FILE):
  --db sqlite:PATH|postgres://...   database (SPAREKEY_DB; default sqlite:./sparekey-data/sparekey.db)
  --master-key KEY, --master-key-file PATH
                                    the master key the servers use: the new private key is
                                    sealed under it (SPAREKEY_MASTER_KEY, SPAREKEY_MASTER_KEY_FILE)
  --old-master-keys KEYS            during a master-key rotation, the old keys (SPAREKEY_OLD_MASTER_KEYS)
  --project-id ID                   rotate this project's key only (default: every project)
  --signing-key-publish-delay D     from publication to signing (default 2m; at least 1m)
  --signing-key-grace D             how long the replaced key still verifies once the new one
                                    signs (default 15m; at least 10m)
  --unsafe-short-times              accept shorter times (tests only: JWTs may fail before they expire)
  --db-max-conns N, --db-statement-timeout D   PostgreSQL connection settings

Example:
  SPAREKEY_MASTER_KEY_FILE=/etc/sparekey/master.key sparekey keys rotate-signing --db postgres://sparekey@db:5432/sparekey
`

const keysRotateMasterUsage = `Usage: sparekey keys rotate-master --master-key NEW --old-master-keys OLD[,OLDER] [--db ...] [--batch-size N] [--batch-pause D] [--check]

Re-seals every secret the database holds (project peppers, signing keys, TOTP secrets, recovery
code sets, password hashes, webhook secrets) under the new master key, while the servers run
with --master-key NEW --old-master-keys OLD. It walks each sealed column in small batches in key
order, re-sealing the values still under an old key with the same associated data; a value a
server changed meanwhile is never overwritten. It prints progress (rows done / total per table)
to stderr. It is safe to interrupt or kill: run it again and it skips what is already done. At
the end it reads every sealed value again and exits 0 only if all of them are under the new key
and open; the old key is then no longer needed: restart the servers with --master-key NEW alone.

With --check it changes nothing and only reports which master keys seal the data (old keys are
then optional).

Flags (each also read from its SPAREKEY_* environment twin; a secret also from *_FILE):
  --db sqlite:PATH|postgres://...   database (SPAREKEY_DB; default sqlite:./sparekey-data/sparekey.db)
  --master-key NEW, --master-key-file PATH
                                    the new master key, given explicitly (SPAREKEY_MASTER_KEY,
                                    SPAREKEY_MASTER_KEY_FILE)
  --old-master-keys OLD[,OLDER]     the keys to rotate away from (SPAREKEY_OLD_MASTER_KEYS,
                                    SPAREKEY_OLD_MASTER_KEYS_FILE); required unless --check
  --batch-size N                    values per read and per write transaction (default 100)
  --batch-pause D                   pause between batches, to leave the database to the traffic
                                    (default 0)
  --check                           report only; change nothing
  --db-max-conns N, --db-statement-timeout D   PostgreSQL connection settings

Example:
  SPAREKEY_MASTER_KEY_FILE=/etc/sparekey/master.key.new SPAREKEY_OLD_MASTER_KEYS_FILE=/etc/sparekey/master.key \
    sparekey keys rotate-master --db postgres://sparekey@db:5432/sparekey --batch-pause 10ms
`

const keysListUsage = `Usage: sparekey keys list [--db ...] [--project-id ID] [--json]

Lists the session-JWT signing keys of every project (or of --project-id's), newest first, with
their state now: pending (published, not signing yet), signing, verifying (replaced, retiring at
RETIRES) or retired; and when each was created, activates and retires.

Flags (each also read from its SPAREKEY_* environment twin; a secret also from *_FILE):
  --db sqlite:PATH|postgres://...   database (SPAREKEY_DB; default sqlite:./sparekey-data/sparekey.db)
  --master-key KEY, --master-key-file PATH, --old-master-keys KEYS
                                    the master key settings the servers use
  --project-id ID                   this project only (default: every project)
  --json                            print a JSON array
  --db-max-conns N, --db-statement-timeout D   PostgreSQL connection settings

Example:
  sparekey keys list --db sqlite:/var/lib/sparekey/sparekey.db
`

func keysRotateSigningCommand() command {
	return command{name: "keys rotate-signing", summary: "add a new JWT signing key; the old one retires after a grace", usage: keysRotateSigningUsage, run: keysRotateSigning}
}

func keysRotateMasterCommand() command {
	return command{name: "keys rotate-master", summary: "re-seal every stored secret under a new master key", usage: keysRotateMasterUsage, run: keysRotateMaster}
}

func keysListCommand() command {
	return command{name: "keys list", summary: "list the JWT signing keys and their states", usage: keysListUsage, run: keysList}
}

// keysSetup is what the key commands share: the storage flags, and the service they build.
type keysSetup struct {
	storageFlags
	store database
	svc   *auth.Service
}

// open refuses a SQLite database that does not exist (a key command creates nothing), opens
// the store, builds the keyring and proves it opens the data.
func (k *keysSetup) open(ctx context.Context, stderr io.Writer) error {
	if err := k.checkMasterKeySource(); err != nil {
		return err
	}
	if err := k.validate(); err != nil {
		return err
	}
	if !isPostgres(k.db) {
		path, err := k.sqlitePath()
		if err != nil {
			return err
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("--db %s: %w", displayDB(k.db), err)
		}
	}
	store, err := k.openStore(ctx, false)
	if err != nil {
		return err
	}
	k.store = store
	keys, err := k.keyring(ctx, store, stderr)
	if err != nil {
		return err
	}
	if k.svc, err = auth.NewService(store, keys, auth.DefaultConfig(), nil); err != nil {
		return err
	}
	return k.svc.CheckMasterKey(ctx)
}

func (k *keysSetup) close() {
	if k.store != nil {
		k.store.Close()
	}
}

// projectIDs is --project-id, or every project of the database.
func (k *keysSetup) projectIDs(ctx context.Context, only string) ([]string, error) {
	if only != "" {
		return []string{only}, nil
	}
	ps, err := k.store.Projects(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	return ids, nil
}

// rotateSigningFlags are keys rotate-signing's flags.
type rotateSigningFlags struct {
	keysSetup
	projectID           string
	publishDelay, grace time.Duration
	unsafeShort         bool
}

func (f *rotateSigningFlags) register(fs *flag.FlagSet) {
	f.storageFlags.register(fs)
	fs.StringVar(&f.projectID, "project-id", "", "rotate this project's key only (default: every project)")
	fs.DurationVar(&f.publishDelay, "signing-key-publish-delay", auth.DefaultSigningKeyPublishDelay, "from publication to signing: at least the servers' --signing-key-cache-ttl")
	fs.DurationVar(&f.grace, "signing-key-grace", auth.DefaultSigningKeyGrace, "how long the replaced key still verifies once the new one signs")
	fs.BoolVar(&f.unsafeShort, "unsafe-short-times", false, "accept a publish delay under 1m and a grace under 10m (tests only)")
}

func keysRotateSigning(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f rotateSigningFlags
	fs := newFlagSet("keys rotate-signing", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, keysRotateSigningUsage) }
	f.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	k, projectID, publishDelay, grace, unsafeShort := &f.keysSetup, f.projectID, f.publishDelay, f.grace, f.unsafeShort
	var errs []error
	switch {
	case publishDelay < 0:
		errs = append(errs, settingError("signing-key-publish-delay", "must not be negative, not %s", publishDelay))
	case publishDelay < auth.MinSigningKeyPublishDelay && !unsafeShort:
		errs = append(errs, settingError("signing-key-publish-delay", "must be at least %s (the servers' --signing-key-cache-ttl, so every replica publishes the key before any signs with it), not %s; --unsafe-short-times overrides this for tests", auth.MinSigningKeyPublishDelay, publishDelay))
	}
	switch {
	case grace < 0:
		errs = append(errs, settingError("signing-key-grace", "must not be negative, not %s", grace))
	case grace < auth.MinSigningKeyGrace && !unsafeShort:
		errs = append(errs, settingError("signing-key-grace", "must be at least %s (JWTs live 5m; the old key must outlast them), not %s; --unsafe-short-times overrides this for tests", auth.MinSigningKeyGrace, grace))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	defer k.close()
	if err := k.open(ctx, stderr); err != nil {
		return err
	}
	ids, err := k.projectIDs(ctx, projectID)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return errors.New("the database holds no project")
	}
	for _, id := range ids {
		key, err := k.svc.RotateSigningKey(ctx, id, publishDelay, grace)
		if err != nil {
			return fmt.Errorf("project %s: %w", id, err)
		}
		fmt.Fprintf(stdout, "%s: added signing key %s: in the JWKS now, signing from %s; the key it replaces retires at %s\n",
			id, key.KID, key.ActivatesAt.Format(time.RFC3339), key.ActivatesAt.Add(grace).Format(time.RFC3339))
	}
	return nil
}

// keysListFlags are keys list's flags.
type keysListFlags struct {
	keysSetup
	projectID string
	asJSON    bool
}

func (f *keysListFlags) register(fs *flag.FlagSet) {
	f.storageFlags.register(fs)
	fs.StringVar(&f.projectID, "project-id", "", "this project only (default: every project)")
	fs.BoolVar(&f.asJSON, "json", false, "print a JSON array")
}

func keysList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f keysListFlags
	fs := newFlagSet("keys list", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, keysListUsage) }
	f.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	k, projectID, asJSON := &f.keysSetup, f.projectID, f.asJSON
	defer k.close()
	if err := k.open(ctx, stderr); err != nil {
		return err
	}
	ids, err := k.projectIDs(ctx, projectID)
	if err != nil {
		return err
	}
	type row struct {
		ProjectID   string `json:"project_id"`
		KID         string `json:"kid"`
		State       string `json:"state"`
		CreatedAt   string `json:"created_at"`
		ActivatesAt string `json:"activates_at"`
		RetiresAt   string `json:"retires_at,omitempty"`
	}
	rows := []row{}
	for _, id := range ids {
		keys, err := k.svc.SigningKeys(ctx, id)
		if err != nil {
			return fmt.Errorf("project %s: %w", id, err)
		}
		for _, key := range keys {
			r := row{ProjectID: id, KID: key.KID, State: string(key.State), CreatedAt: key.CreatedAt.Format(time.RFC3339), ActivatesAt: key.CreatedAt.Format(time.RFC3339)}
			if !key.ActivatesAt.IsZero() {
				r.ActivatesAt = key.ActivatesAt.Format(time.RFC3339)
			}
			if !key.RetiresAt.IsZero() {
				r.RetiresAt = key.RetiresAt.Format(time.RFC3339)
			}
			rows = append(rows, r)
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECT\tKID\tSTATE\tCREATED\tACTIVATES\tRETIRES")
	for _, r := range rows {
		retires := r.RetiresAt
		if retires == "" {
			retires = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ProjectID, r.KID, r.State, r.CreatedAt, r.ActivatesAt, retires)
	}
	return tw.Flush()
}

// rotateMasterFlags are keys rotate-master's flags.
type rotateMasterFlags struct {
	keysSetup
	batchSize  int
	batchPause time.Duration
	check      bool
}

func (f *rotateMasterFlags) register(fs *flag.FlagSet) {
	f.storageFlags.register(fs)
	fs.IntVar(&f.batchSize, "batch-size", 100, "values per read and per write transaction")
	fs.DurationVar(&f.batchPause, "batch-pause", 0, "pause between batches")
	fs.BoolVar(&f.check, "check", false, "report only; change nothing")
}

func keysRotateMaster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f rotateMasterFlags
	fs := newFlagSet("keys rotate-master", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, keysRotateMasterUsage) }
	f.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	k, batchSize, batchPause, check := &f.keysSetup, f.batchSize, f.batchPause, f.check
	var errs []error
	if batchSize < 1 || batchSize > 10000 {
		errs = append(errs, settingError("batch-size", "must be from 1 to 10000, not %d", batchSize))
	}
	if batchPause < 0 {
		errs = append(errs, settingError("batch-pause", "must not be negative, not %s", batchPause))
	}
	// The new key is the one given: never a master.key file found beside the database, nor a
	// generated one.
	if k.masterKey == "" && k.masterKeyFile == "" {
		errs = append(errs, usageError{fmt.Sprintf("the new master key must be given: --master-key (%s) or --master-key-file (%s)", envName("master-key"), envName("master-key-file"))})
	}
	old, err := k.parseOldMasterKeys()
	if err != nil {
		errs = append(errs, err)
	} else if len(old) == 0 && !check {
		errs = append(errs, settingError("old-master-keys", "is required: the master keys to rotate away from (the servers' --master-key until now)"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	defer k.close()
	if err := k.open(ctx, stderr); err != nil {
		return err
	}
	newID := k.svc.MasterKeyID()
	oldIDs := make([]string, len(old))
	for i, o := range old {
		kr, err := secret.NewKeyring(o)
		if err != nil {
			return err
		}
		oldIDs[i] = fmt.Sprintf("%08x", kr.PrimaryKeyID())
	}

	if !check {
		fmt.Fprintf(stderr, "rotate-master: re-sealing every secret under master key %08x; old keys: %s\n", newID, strings.Join(oldIDs, ", "))
		last := map[auth.SealedColumn]time.Time{}
		err := k.svc.Reseal(ctx, auth.ResealOptions{BatchSize: batchSize, Pause: batchPause, Progress: func(p auth.ResealProgress) {
			// The first batch, then at most a line a second, and the end of each column.
			if !p.Finished && !last[p.Column].IsZero() && time.Since(last[p.Column]) < time.Second {
				return
			}
			last[p.Column] = time.Now()
			total := max(p.Total, p.Done)
			state := ""
			if p.Finished {
				state = " done"
			}
			fmt.Fprintf(stderr, "rotate-master: %s: %d/%d rows (%d re-sealed, %d changed meanwhile)%s\n", p.Column, p.Done, total, p.Resealed, p.Changed, state)
		}})
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted: %w; run the same command again to finish (what is done stays done)", err)
			}
			return fmt.Errorf("%w; the walk stopped there (what it did stays done): give the missing key in --old-master-keys and run again", err)
		}
	}

	reports, err := k.svc.CheckSealed(ctx, batchSize)
	if err != nil {
		return err
	}
	var stale, broken int
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "COLUMN\tVALUES\tUNDER NEW KEY\tUNDER OTHER KEYS\tUNOPENABLE")
	for _, r := range reports {
		var others []string
		for id, n := range r.ByKey {
			if id != newID {
				others = append(others, fmt.Sprintf("%08x:%d", id, n))
			}
		}
		sort.Strings(others)
		shown := strings.Join(others, " ")
		if shown == "" {
			shown = "0"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\n", r.Column, r.Values, r.ByKey[newID], shown, r.Unopenable)
		stale += r.Stale(newID)
		broken += r.Unopenable
	}
	tw.Flush()
	switch {
	case stale > 0 && check:
		return fmt.Errorf("%d sealed values are not under master key %08x", stale, newID)
	case stale > 0:
		return fmt.Errorf("%d sealed values are still under other keys: they were written during the walk by a server still sealing under an old key; "+
			"restart every server with --master-key NEW --old-master-keys OLD and run this again", stale)
	case broken > 0:
		return fmt.Errorf("%d sealed values do not open with their associated data: the database was altered", broken)
	}
	fmt.Fprintf(stdout, "every sealed value is under master key %08x and opens.\n", newID)
	if len(oldIDs) > 0 && !check {
		fmt.Fprintf(stdout, "The old master keys (%s) may now be removed: restart every server with --master-key NEW alone, then destroy the old key.\n", strings.Join(oldIDs, ", "))
	}
	return nil
}

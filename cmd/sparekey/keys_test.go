package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/secret"
)

// The key commands in process: their usage, every refusal an operator can run into (with its
// exit status and without printing a key), and a master-key rotation of a SQLite file.

func keysHex(t *testing.T) string {
	t.Helper()
	k, err := secret.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keysKeyID(t *testing.T, hexKey string) string {
	t.Helper()
	k, err := secret.ParseMasterKey(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := secret.NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%08x", kr.PrimaryKeyID())
}

// keysRun runs one command line in process and returns what it printed and its exit status.
func keysRun(args ...string) (stdout, stderr string, code int, err error) {
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, &out, &errOut)
	if err != nil {
		code = exitCode(err)
	}
	return out.String(), errOut.String(), code, err
}

// keysDatabase is a SQLite file with one project sealed under key.
func keysDatabase(t *testing.T, key string) (db, projectID string) {
	t.Helper()
	db = "sqlite:" + filepath.Join(t.TempDir(), "sparekey.db")
	out, _, _, err := keysRun("project", "create", "--db", db, "--master-key", key, "--json")
	if err != nil {
		t.Fatalf("project create: %v", err)
	}
	var p struct {
		ProjectID string `json:"project_id"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	return db, p.ProjectID
}

func TestKeysCommandsUsage(t *testing.T) {
	for _, cc := range []struct {
		name  string
		usage string
		flags func(*flag.FlagSet)
	}{
		{"keys rotate-signing", keysRotateSigningUsage, func(fs *flag.FlagSet) { new(rotateSigningFlags).register(fs) }},
		{"keys rotate-master", keysRotateMasterUsage, func(fs *flag.FlagSet) { new(rotateMasterFlags).register(fs) }},
		{"keys list", keysListUsage, func(fs *flag.FlagSet) { new(keysListFlags).register(fs) }},
	} {
		t.Run(cc.name, func(t *testing.T) {
			if !strings.HasPrefix(cc.usage, "Usage: sparekey "+cc.name+" ") {
				t.Errorf("usage does not start with the command line:\n%s", cc.usage)
			}
			example := cc.usage[strings.Index(cc.usage, "\nExample:")+1:]
			if !strings.HasPrefix(example, "Example:") || !strings.Contains(example, "sparekey "+cc.name+" ") {
				t.Errorf("usage has no example of %q", cc.name)
			}
			fs := flag.NewFlagSet(cc.name, flag.ContinueOnError)
			cc.flags(fs)
			fs.VisitAll(func(f *flag.Flag) {
				if !regexp.MustCompile(`(^|[\s(|,\[])--` + regexp.QuoteMeta(f.Name) + `\b`).MatchString(cc.usage) {
					t.Errorf("usage does not document --%s", f.Name)
				}
			})
			out, _, _, err := keysRun(append([]string{"help"}, strings.Fields(cc.name)...)...)
			if err != nil || out != cc.usage {
				t.Errorf("sparekey help %s: %v, printed %q", cc.name, err, out)
			}
		})
	}
}

// TestKeysRefusals: each mistake is refused before anything changes, naming the setting, with
// exit status 2 for a setting and 1 for a database that does not fit; no key is ever printed.
func TestKeysRefusals(t *testing.T) {
	opsCleanEnv(t)
	oldKey, newKey, otherKey := keysHex(t), keysHex(t), keysHex(t)
	db, pid := keysDatabase(t, oldKey)
	missing := "sqlite:" + filepath.Join(t.TempDir(), "none", "sparekey.db")
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string // a regexp the error must match
	}{
		{"rotate-master without old keys", []string{"keys", "rotate-master", "--db", db, "--master-key", newKey}, 2,
			`^--old-master-keys \(SPAREKEY_OLD_MASTER_KEYS\) is required`},
		{"rotate-master with the new key among the old", []string{"keys", "rotate-master", "--db", db, "--master-key", newKey, "--old-master-keys", oldKey + "," + newKey}, 2,
			`^--old-master-keys \(SPAREKEY_OLD_MASTER_KEYS\) holds the master key itself`},
		{"rotate-master with no new key given", []string{"keys", "rotate-master", "--db", db, "--old-master-keys", oldKey}, 2,
			`the new master key must be given: --master-key \(SPAREKEY_MASTER_KEY\) or --master-key-file`},
		{"rotate-master with an old key that does not parse", []string{"keys", "rotate-master", "--db", db, "--master-key", newKey, "--old-master-keys", oldKey + ",hunter2"}, 2,
			`^--old-master-keys \(SPAREKEY_OLD_MASTER_KEYS\) key 2 of 2 is not a master key`},
		{"rotate-master with batch size 0", []string{"keys", "rotate-master", "--db", db, "--master-key", newKey, "--old-master-keys", oldKey, "--batch-size", "0"}, 2,
			`^--batch-size \(SPAREKEY_BATCH_SIZE\) must be from 1 to 10000, not 0`},
		{"rotate-master without the key the data is sealed under", []string{"keys", "rotate-master", "--db", db, "--master-key", newKey, "--old-master-keys", otherKey}, 1,
			`cannot decrypt the data of project ` + pid + `: it is sealed under master key ` + keysKeyID(t, oldKey)},
		{"rotate-master on a database that does not exist", []string{"keys", "rotate-master", "--db", missing, "--master-key", newKey, "--old-master-keys", oldKey}, 1,
			`no such file or directory`},
		{"rotate-signing with a publish delay under the cache TTL", []string{"keys", "rotate-signing", "--db", db, "--master-key", oldKey, "--signing-key-publish-delay", "30s"}, 2,
			`^--signing-key-publish-delay \(SPAREKEY_SIGNING_KEY_PUBLISH_DELAY\) must be at least 1m0s .*not 30s; --unsafe-short-times`},
		{"rotate-signing with a grace under 10m", []string{"keys", "rotate-signing", "--db", db, "--master-key", oldKey, "--signing-key-grace", "5m"}, 2,
			`^--signing-key-grace \(SPAREKEY_SIGNING_KEY_GRACE\) must be at least 10m0s .*not 5m0s`},
		{"rotate-signing with a negative grace, even unsafe", []string{"keys", "rotate-signing", "--db", db, "--master-key", oldKey, "--signing-key-grace", "-1s", "--unsafe-short-times"}, 2,
			`^--signing-key-grace \(SPAREKEY_SIGNING_KEY_GRACE\) must not be negative`},
		{"rotate-signing of an unknown project", []string{"keys", "rotate-signing", "--db", db, "--master-key", oldKey, "--project-id", "project-test-00000000-0000-4000-8000-000000000000"}, 1,
			`^project project-test-00000000-0000-4000-8000-000000000000: project_not_found`},
		{"rotate-signing with the wrong master key", []string{"keys", "rotate-signing", "--db", db, "--master-key", newKey}, 1,
			`cannot decrypt the data of project`},
		{"keys list on a database that does not exist", []string{"keys", "list", "--db", missing, "--master-key", oldKey}, 1,
			`no such file or directory`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code, err := keysRun(tc.args...)
			if err == nil || code != tc.code || !regexp.MustCompile(tc.msg).MatchString(err.Error()) {
				t.Fatalf("error %v (exit %d), want exit %d and %s", err, code, tc.code, tc.msg)
			}
			for _, k := range []string{oldKey, newKey, otherKey, "hunter2"} {
				if strings.Contains(out+errOut+err.Error(), k) {
					t.Errorf("the refusal shows a key: %s%s%v", out, errOut, err)
				}
			}
		})
	}
	if _, err := os.Stat(strings.TrimPrefix(missing, "sqlite:")); !os.IsNotExist(err) {
		t.Errorf("a refused command created %s: %v", missing, err)
	}
	// Nothing changed: the data is all under the old key, and the project has its one key.
	out, _, _, err := keysRun("keys", "rotate-master", "--db", db, "--master-key", oldKey, "--check")
	if err != nil || !strings.Contains(out, "every sealed value is under master key "+keysKeyID(t, oldKey)) {
		t.Errorf("rotate-master --check with the old key after the refusals: %v\n%s", err, out)
	}
	out, _, _, err = keysRun("keys", "list", "--db", db, "--master-key", oldKey, "--json")
	var keys []map[string]string
	if err != nil || json.Unmarshal([]byte(out), &keys) != nil || len(keys) != 1 || keys[0]["state"] != "signing" {
		t.Errorf("keys list after the refusals: %v %s", err, out)
	}
}

// TestKeysRotateMaster rotates a SQLite file's master key with the old key from the
// SPAREKEY_OLD_MASTER_KEYS_FILE twin, then checks it with the new key alone.
func TestKeysRotateMaster(t *testing.T) {
	opsCleanEnv(t)
	oldKey, newKey := keysHex(t), keysHex(t)
	db, _ := keysDatabase(t, oldKey)
	for range 2 { // a second project, so peppers and signing keys span rows
		if _, _, _, err := keysRun("project", "create", "--db", db, "--master-key", oldKey); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("SPAREKEY_OLD_MASTER_KEYS_FILE", opsWriteFile(t, "old.key", oldKey+"\n"))
	t.Setenv("SPAREKEY_MASTER_KEY", newKey)

	out, errOut, _, err := keysRun("keys", "rotate-master", "--db", db, "--batch-size", "1")
	if err != nil {
		t.Fatalf("rotate-master: %v\n%s%s", err, out, errOut)
	}
	newID, oldID := keysKeyID(t, newKey), keysKeyID(t, oldKey)
	for _, want := range []string{
		`(?m)^rotate-master: re-sealing every secret under master key ` + newID + `; old keys: ` + oldID + `$`,
		`(?m)^rotate-master: signing_keys\.sealed_private_key: 1/3 rows \(1 re-sealed, 0 changed meanwhile\)$`,
		`(?m)^rotate-master: signing_keys\.sealed_private_key: 3/3 rows \(3 re-sealed, 0 changed meanwhile\) done$`,
		`(?m)^rotate-master: projects\.sealed_pepper: 3/3 rows \(3 re-sealed, 0 changed meanwhile\) done$`,
	} {
		if !regexp.MustCompile(want).MatchString(errOut) {
			t.Errorf("progress lacks %s:\n%s", want, errOut)
		}
	}
	for _, want := range []string{
		`(?m)^projects\.sealed_pepper +3 +3 +0 +0$`,
		`(?m)^signing_keys\.sealed_private_key +3 +3 +0 +0$`,
		`(?m)^every sealed value is under master key ` + newID + ` and opens\.$`,
		`(?m)^The old master keys \(` + oldID + `\) may now be removed`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("report lacks %s:\n%s", want, out)
		}
	}

	// Run again: idempotent, nothing to re-seal.
	_, errOut, _, err = keysRun("keys", "rotate-master", "--db", db)
	if err != nil || !strings.Contains(errOut, "projects.sealed_pepper: 3/3 rows (0 re-sealed, 0 changed meanwhile) done") {
		t.Errorf("a second rotate-master: %v\n%s", err, errOut)
	}
	// The new key alone opens everything; the old key alone nothing.
	os.Unsetenv("SPAREKEY_OLD_MASTER_KEYS_FILE")
	if out, _, _, err := keysRun("keys", "rotate-master", "--db", db, "--check"); err != nil || strings.Contains(out, "may now be removed") {
		t.Errorf("rotate-master --check with the new key: %v\n%s", err, out)
	}
	if _, _, code, err := keysRun("keys", "rotate-master", "--db", db, "--check", "--master-key", oldKey); err == nil || code != 1 {
		t.Errorf("rotate-master --check with the old key: %v (exit %d), want a refusal", err, code)
	}
}

// TestKeysRotateSigning adds keys with the default times and lists them.
func TestKeysRotateSigning(t *testing.T) {
	opsCleanEnv(t)
	key := keysHex(t)
	db, pid := keysDatabase(t, key)
	t.Setenv("SPAREKEY_MASTER_KEY", key)
	start := time.Now().UTC().Truncate(time.Second)
	out, _, _, err := keysRun("keys", "rotate-signing", "--db", db)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^` + pid + `: added signing key (jwk-test-\S+): in the JWKS now, signing from (\S+); the key it replaces retires at (\S+)\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("rotate-signing printed %q", out)
	}
	activates, _ := time.Parse(time.RFC3339, m[2])
	retires, _ := time.Parse(time.RFC3339, m[3])
	if d := activates.Sub(start); d < 2*time.Minute || retires.Sub(activates) != 15*time.Minute {
		t.Errorf("activates %s after the start, retires %s after that; want at least 2m and 15m", d, retires.Sub(activates))
	}
	out, _, _, err = keysRun("keys", "list", "--db", db, "--project-id", pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`(?m)^PROJECT +KID +STATE +CREATED +ACTIVATES +RETIRES$`,
		`(?m)^` + pid + ` +` + m[1] + ` +pending +\S+ +` + m[2] + ` +-$`,
		`(?m)^` + pid + ` +jwk-test-\S+ +signing +\S+ +\S+ +` + m[3] + `$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("keys list lacks %s:\n%s", want, out)
		}
	}
}

// TestOldMasterKeysSetting: --old-master-keys is a secret with a _FILE twin, joins the keyring
// serve builds (so data under the old key opens), and --signing-key-cache-ttl reaches the domain.
func TestOldMasterKeysSetting(t *testing.T) {
	opsCleanEnv(t)
	oldKey, newKey := keysHex(t), keysHex(t)
	db, _ := keysDatabase(t, oldKey)
	t.Setenv("SPAREKEY_OLD_MASTER_KEYS_FILE", opsWriteFile(t, "old", oldKey+"\n"))
	var f serveFlags
	fs := newFlagSet("serve", io.Discard)
	f.register(fs)
	sources, err := parseSettings(fs, []string{"--db", db, "--master-key", newKey, "--signing-key-cache-ttl", "5s"})
	if err != nil {
		t.Fatal(err)
	}
	if sources["old-master-keys"] != "SPAREKEY_OLD_MASTER_KEYS_FILE" || shownValue(fs.Lookup("old-master-keys")) != "set (hidden)" {
		t.Errorf("--old-master-keys from %q shown as %q", sources["old-master-keys"], shownValue(fs.Lookup("old-master-keys")))
	}
	if err := f.validate(); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.domainFlags.config()
	if err != nil || cfg.KeyCacheTTL != 5*time.Second {
		t.Errorf("config: %v, KeyCacheTTL %s, want 5s", err, cfg.KeyCacheTTL)
	}
	ctx := context.Background()
	store, err := f.openStore(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keys, err := f.keyring(ctx, store, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if id := fmt.Sprintf("%08x", keys.PrimaryKeyID()); id != keysKeyID(t, newKey) {
		t.Errorf("the keyring seals under %s, want the new key %s", id, keysKeyID(t, newKey))
	}

	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--signing-key-cache-ttl", "0s"}, "--signing-key-cache-ttl (SPAREKEY_SIGNING_KEY_CACHE_TTL) must be from 1s to 1h, not 0s"},
		{[]string{"--old-master-keys", "nope"}, "--old-master-keys (SPAREKEY_OLD_MASTER_KEYS) key 1 of 1 is not a master key"},
	} {
		var f serveFlags
		fs := newFlagSet("serve", io.Discard)
		f.register(fs)
		if _, err := parseSettings(fs, tc.args); err != nil {
			t.Fatal(err)
		}
		if err := f.validate(); err == nil || !strings.Contains(err.Error(), tc.msg) || exitCode(err) != 2 {
			t.Errorf("%v: %v, want %q (exit 2)", tc.args, err, tc.msg)
		}
	}
}

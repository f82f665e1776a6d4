package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/secret"
	"github.com/sparekey/sparekey/internal/store/sqlite"
)

// opsCleanEnv removes every SPAREKEY_* variable for the test (restoring them after), so a
// developer's or CI's settings cannot change what the test sees; the test then sets its own.
func opsCleanEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SPAREKEY_") {
			t.Setenv(k, v) // registers the restore
			os.Unsetenv(k)
		}
	}
}

func opsWriteFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func opsMasterKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, secret.MasterKeySize)
	rand.Read(k)
	return hex.EncodeToString(k)
}

// TestSettingSources: every flag reads its SPAREKEY_* twin when not on the command line; a
// secret setting also reads the file its *_FILE twin names (one trailing newline dropped),
// unless the command has a --NAME-file flag of its own; setting both twins is refused; and a
// wrong secret value is never echoed.
func TestSettingSources(t *testing.T) {
	for _, c := range []struct {
		name    string
		env     map[string]string
		args    []string
		want    map[string]string // flag → value
		sources map[string]string // flag → source
		err     string            // a regexp the error must match; "" is none
	}{
		{
			name:    "defaults",
			want:    map[string]string{"addr": "127.0.0.1:8080", "lock-threshold": "10"},
			sources: map[string]string{"addr": "default", "lock-threshold": "default"},
		},
		{
			name:    "environment twins",
			env:     map[string]string{"SPAREKEY_ADDR": "127.0.0.1:9", "SPAREKEY_LOCK_THRESHOLD": "3", "SPAREKEY_MIGRATE": "true"},
			want:    map[string]string{"addr": "127.0.0.1:9", "lock-threshold": "3", "migrate": "true"},
			sources: map[string]string{"addr": "SPAREKEY_ADDR", "lock-threshold": "SPAREKEY_LOCK_THRESHOLD", "migrate": "SPAREKEY_MIGRATE"},
		},
		{
			name:    "the command line wins",
			env:     map[string]string{"SPAREKEY_LOCK_THRESHOLD": "3", "SPAREKEY_DB_FILE": "/nonexistent"},
			args:    []string{"--lock-threshold", "4", "--db", "sqlite:/tmp/x.db"},
			want:    map[string]string{"lock-threshold": "4", "db": "sqlite:/tmp/x.db"},
			sources: map[string]string{"lock-threshold": "command line", "db": "command line"},
		},
		{
			name:    "a secret from its _FILE twin, one newline dropped",
			env:     map[string]string{"SPAREKEY_DB_FILE": "@postgres://sk:pa ss@db:5432/sk\n\n"},
			want:    map[string]string{"db": "postgres://sk:pa ss@db:5432/sk\n"},
			sources: map[string]string{"db": "SPAREKEY_DB_FILE"},
		},
		{
			name:    "CRLF line ending",
			env:     map[string]string{"SPAREKEY_DB_FILE": "@sqlite:/data/sk.db\r\n"},
			want:    map[string]string{"db": "sqlite:/data/sk.db"},
			sources: map[string]string{"db": "SPAREKEY_DB_FILE"},
		},
		{
			name:    "SPAREKEY_MASTER_KEY_FILE is --master-key-file's twin, read by the keyring",
			env:     map[string]string{"SPAREKEY_MASTER_KEY_FILE": "/run/secrets/key"},
			want:    map[string]string{"master-key": "", "master-key-file": "/run/secrets/key"},
			sources: map[string]string{"master-key": "default", "master-key-file": "SPAREKEY_MASTER_KEY_FILE"},
		},
		{
			name: "both twins of a secret",
			env:  map[string]string{"SPAREKEY_DB": "sqlite:a.db", "SPAREKEY_DB_FILE": "@sqlite:b.db"},
			err:  `^both SPAREKEY_DB and SPAREKEY_DB_FILE are set; set one$`,
		},
		{
			name: "an unreadable _FILE",
			env:  map[string]string{"SPAREKEY_DB_FILE": "/nonexistent/db-url"},
			err:  `^SPAREKEY_DB_FILE: open /nonexistent/db-url: no such file or directory$`,
		},
		{
			name: "a bad value names the variable",
			env:  map[string]string{"SPAREKEY_LOCK_THRESHOLD": "many"},
			err:  `^SPAREKEY_LOCK_THRESHOLD="many": parse error$`,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			opsCleanEnv(t)
			for k, v := range c.env {
				if rest, ok := strings.CutPrefix(v, "@"); ok { // @content: a file holding content
					v = opsWriteFile(t, "secret", rest)
				}
				t.Setenv(k, v)
			}
			var f serveFlags
			fs := newFlagSet("serve", io.Discard)
			f.register(fs)
			sources, err := parseSettings(fs, c.args)
			if c.err != "" {
				if err == nil || !regexp.MustCompile(c.err).MatchString(err.Error()) {
					t.Fatalf("error %v, want one matching %s", err, c.err)
				}
				if exitCode(err) != 2 {
					t.Errorf("exit code %d, want 2", exitCode(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range c.want {
				if got := fs.Lookup(name).Value.String(); got != want {
					t.Errorf("--%s = %q, want %q", name, got, want)
				}
			}
			for name, want := range c.sources {
				if sources[name] != want {
					t.Errorf("--%s came from %q, want %q", name, sources[name], want)
				}
			}
		})
	}

	t.Run("a wrong secret is not echoed", func(t *testing.T) {
		opsCleanEnv(t)
		const leaked = "s3cr3t-value"
		fs := newFlagSet("x", io.Discard)
		fs.Int("secret", 0, "") // a secret flag whose value fails to parse
		t.Setenv("SPAREKEY_SECRET", leaked)
		_, err := parseSettings(fs, nil)
		if err == nil || strings.Contains(err.Error(), leaked) || !strings.HasPrefix(err.Error(), "SPAREKEY_SECRET: ") {
			t.Fatalf("error %v, want one naming SPAREKEY_SECRET without its value", err)
		}
	})
}

// TestInvalidSettingsFailAtStart: serve refuses an invalid setting before it opens anything, with
// a message that names the setting by flag and variable, whichever was used, and exit code 2.
func TestInvalidSettingsFailAtStart(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"--lock-threshold", "0"}, want: "--lock-threshold (SPAREKEY_LOCK_THRESHOLD) must be at least 1, not 0"},
		{env: map[string]string{"SPAREKEY_LOCK_THRESHOLD": "0"}, want: "--lock-threshold (SPAREKEY_LOCK_THRESHOLD) must be at least 1, not 0"},
		{args: []string{"--lock-duration", "500ms"}, want: "--lock-duration (SPAREKEY_LOCK_DURATION) must be at least 1s, not 500ms"},
		{env: map[string]string{"SPAREKEY_EVENT_RETENTION": "5m"}, want: "--event-retention (SPAREKEY_EVENT_RETENTION) must be 0 (keep for ever) or at least 24h, not 5m0s"},
		{args: []string{"--recovery-code-length", "14"}, want: "--recovery-code-length (SPAREKEY_RECOVERY_CODE_LENGTH) must be 12 or 16, not 14"},
		{args: []string{"--log-format", "xml"}, want: `--log-format (SPAREKEY_LOG_FORMAT) must be text or json, not "xml"`},
		{args: []string{"--log-level", "loud"}, want: `--log-level (SPAREKEY_LOG_LEVEL) must be debug, info, warn or error, not "loud"`},
		{args: []string{"--addr", "8080"}, want: `--addr (SPAREKEY_ADDR) must be host:port, e.g. 127.0.0.1:8080, not "8080"`},
		{args: []string{"--addr", "127.0.0.1:http-ish"}, want: `--addr (SPAREKEY_ADDR) has no valid port: "127.0.0.1:http-ish"`},
		{args: []string{"--metrics-addr", "127.0.0.1:8080"}, want: "--metrics-addr (SPAREKEY_METRICS_ADDR) must differ from --addr; leave it empty to serve /metrics on --addr"},
		{args: []string{"--shutdown-timeout", "0s"}, want: "--shutdown-timeout (SPAREKEY_SHUTDOWN_TIMEOUT) must be more than 0s, not 0s"},
		{args: []string{"--db", "mysql://u:p@h/db"}, want: `--db (SPAREKEY_DB) must be sqlite:PATH or postgres://user:password@host:port/database, not "(hidden, as it may hold a password)"`},
		{args: []string{"--db", "sqlite:"}, want: "--db (SPAREKEY_DB) sqlite: needs a file path, e.g. sqlite:./sparekey-data/sparekey.db"},
		{args: []string{"--db-max-conns", "0"}, want: "--db-max-conns (SPAREKEY_DB_MAX_CONNS) must be from 1 to 10000, not 0"},
		{args: []string{"--db-statement-timeout", "-1s"}, want: "--db-statement-timeout (SPAREKEY_DB_STATEMENT_TIMEOUT) must not be negative, not -1s"},
		{args: []string{"--master-key", "abc"}, want: "--master-key (SPAREKEY_MASTER_KEY) is not a master key: a master key is 32 random bytes written as 64 hex characters or as base64 (generate one with: openssl rand -hex 32)"},
		{args: []string{"--master-key-file", "/nonexistent/key"}, want: "--master-key-file (SPAREKEY_MASTER_KEY_FILE) cannot be read: open /nonexistent/key: no such file or directory"},
		{env: map[string]string{"SPAREKEY_MASTER_KEY": strings.Repeat("ab", 32), "SPAREKEY_MASTER_KEY_FILE": "/run/secrets/key"},
			want: "both --master-key (SPAREKEY_MASTER_KEY) and --master-key-file (SPAREKEY_MASTER_KEY_FILE) are set; set one"},
		{args: []string{"--lock-threshold", "0", "--log-level", "loud"},
			want: "--lock-threshold (SPAREKEY_LOCK_THRESHOLD) must be at least 1, not 0\n--log-level (SPAREKEY_LOG_LEVEL) must be debug, info, warn or error, not \"loud\""},
	} {
		t.Run(c.want, func(t *testing.T) {
			opsCleanEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			dir := t.TempDir()
			db := filepath.Join(dir, "data", "sparekey.db")
			args := append([]string{"--db", "sqlite:" + db, "--addr", "127.0.0.1:8080"}, c.args...)
			var stdout, stderr bytes.Buffer
			err := serve(context.Background(), args, &stdout, &stderr)
			if err == nil || err.Error() != c.want {
				t.Fatalf("serve %s: error %q, want %q", strings.Join(c.args, " "), err, c.want)
			}
			if exitCode(err) != 2 {
				t.Errorf("exit code %d, want 2", exitCode(err))
			}
			if _, err := os.Stat(filepath.Join(dir, "data")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("serve created its data folder before refusing the settings")
			}
		})
	}
}

// opsSeed makes a SQLite database with a project, sealed under masterKey.
func opsSeed(t *testing.T, path, masterKey string) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	key, err := secret.ParseMasterKey(masterKey)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secret.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := auth.NewService(db, keys, auth.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CreateProject(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestConfigCheck: config check prints every setting with its variable, value and source,
// never a secret, and then what serve would find in the database, without changing it.
func TestConfigCheck(t *testing.T) {
	key := opsMasterKey(t)

	t.Run("settings, secrets masked", func(t *testing.T) {
		opsCleanEnv(t)
		t.Setenv("SPAREKEY_MASTER_KEY", key)
		t.Setenv("SPAREKEY_DB_FILE", opsWriteFile(t, "db-url", "postgres://sk:hunter2@db.internal:5432/sk?sslpassword=hunter3\n"))
		var out bytes.Buffer
		if err := configCheck(context.Background(), []string{"--offline", "--lock-threshold", "5"}, &out, io.Discard); err != nil {
			t.Fatalf("config check: %v\n%s", err, out.String())
		}
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`(?m)^SETTING +ENVIRONMENT +VALUE +FROM$`),
			regexp.MustCompile(`(?m)^--addr +SPAREKEY_ADDR +127\.0\.0\.1:8080 +default$`),
			regexp.MustCompile(`(?m)^--db +SPAREKEY_DB +postgres://sk:xxxxx@db\.internal:5432/sk\?sslpassword=xxxxx +SPAREKEY_DB_FILE$`),
			regexp.MustCompile(`(?m)^--lock-threshold +SPAREKEY_LOCK_THRESHOLD +5 +command line$`),
			regexp.MustCompile(`(?m)^--master-key +SPAREKEY_MASTER_KEY +set \(hidden\) +SPAREKEY_MASTER_KEY$`),
			regexp.MustCompile(`(?m)^--master-key-file +SPAREKEY_MASTER_KEY_FILE +"" +default$`),
			regexp.MustCompile(`(?m)^--metrics-addr +SPAREKEY_METRICS_ADDR +"" +default$`),
			regexp.MustCompile(`(?m)^settings: ok$`),
		} {
			if !want.MatchString(out.String()) {
				t.Errorf("output lacks %s:\n%s", want, out.String())
			}
		}
		fs := newFlagSet("serve", io.Discard)
		var f serveFlags
		f.register(fs)
		flags := 0
		fs.VisitAll(func(*flag.Flag) { flags++ })
		if rows := strings.Count(out.String(), "\n--"); rows != flags {
			t.Errorf("%d setting rows, want one per serve flag (%d):\n%s", rows, flags, out.String())
		}
		for _, s := range []string{key, "hunter2", "hunter3", "offline"} {
			if strings.Contains(out.String(), s) {
				t.Errorf("the output holds %q:\n%s", s, out.String())
			}
		}
	})

	t.Run("invalid settings", func(t *testing.T) {
		opsCleanEnv(t)
		t.Setenv("SPAREKEY_LOCK_THRESHOLD", "0")
		var out bytes.Buffer
		err := configCheck(context.Background(), []string{"--offline"}, &out, io.Discard)
		if err == nil || err.Error() != "--lock-threshold (SPAREKEY_LOCK_THRESHOLD) must be at least 1, not 0" || exitCode(err) != 2 {
			t.Fatalf("config check: %v (exit %d), want the lock threshold named, exit 2", err, exitCode(err))
		}
		if !strings.Contains(out.String(), "settings: INVALID") || !regexp.MustCompile(`--lock-threshold +SPAREKEY_LOCK_THRESHOLD +0 +SPAREKEY_LOCK_THRESHOLD`).MatchString(out.String()) {
			t.Errorf("output:\n%s", out.String())
		}
	})

	t.Run("database", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "sparekey.db")
		missing := filepath.Join(dir, "missing", "sparekey.db")
		opsSeed(t, path, key)
		for _, c := range []struct {
			name string
			env  map[string]string
			db   string
			out  string // a regexp the output must match
			err  string // a regexp the error must match; "" is none
		}{
			{name: "the key opens the data", env: map[string]string{"SPAREKEY_MASTER_KEY": key}, db: path,
				out: `(?m)^database: reachable; schema at version \d+, this sparekey's\nmaster key: from --master-key / SPAREKEY_MASTER_KEY; opens the data of 1 project$`},
			{name: "a key file", env: map[string]string{"SPAREKEY_MASTER_KEY_FILE": opsWriteFile(t, "key", key+"\n")}, db: path,
				out: `(?m)^master key: from .*/key; opens the data of 1 project$`},
			{name: "another key", env: map[string]string{"SPAREKEY_MASTER_KEY": opsMasterKey(t)}, db: path,
				err: `^configuration check failed: the master key cannot decrypt the data of project project-test-`},
			{name: "no key for data", db: path,
				err: `^configuration check failed: the database holds data but no master key is configured`},
			{name: "not created yet", db: missing,
				out: `(?m)^database: .*missing/sparekey.db does not exist yet; serve will create it, and generate a master key beside it$`},
		} {
			t.Run(c.name, func(t *testing.T) {
				opsCleanEnv(t)
				for k, v := range c.env {
					t.Setenv(k, v)
				}
				before := opsDirListing(t, dir)
				var out bytes.Buffer
				err := configCheck(context.Background(), []string{"--db", "sqlite:" + c.db}, &out, io.Discard)
				switch {
				case c.err == "" && err != nil:
					t.Fatalf("config check: %v\n%s", err, out.String())
				case c.err != "" && (err == nil || !regexp.MustCompile(c.err).MatchString(err.Error())):
					t.Fatalf("config check: error %v, want one matching %s\n%s", err, c.err, out.String())
				case c.err != "" && exitCode(err) != 1:
					t.Errorf("exit code %d, want 1", exitCode(err))
				}
				if c.out != "" && !regexp.MustCompile(c.out).MatchString(out.String()) {
					t.Errorf("output lacks %s:\n%s", c.out, out.String())
				}
				if after := opsDirListing(t, dir); after != before {
					t.Errorf("config check changed the data folder:\nbefore %s\nafter  %s", before, after)
				}
			})
		}
	})
}

// opsDirListing names the files of dir with their sizes and modification times.
func opsDirListing(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, "-shm") || strings.HasSuffix(p, "-wal") {
			// A read-only connection leaves SQLite's shared-memory files behind; they hold no data.
			return nil
		}
		b.WriteString(p + " " + info.ModTime().String() + "\n")
		return nil
	})
	return b.String()
}

// TestBackupCommand: backup writes a new file that passes SQLite's integrity check and holds the
// data; it refuses to overwrite, to back up a database that does not exist (and creates none),
// and points PostgreSQL at pg_dump.
func TestBackupCommand(t *testing.T) {
	opsCleanEnv(t)
	key := opsMasterKey(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "sparekey.db")
	opsSeed(t, src, key)
	to := filepath.Join(dir, "backup.db")

	var out bytes.Buffer
	if err := backup(context.Background(), []string{"--db", "sqlite:" + src, "--to", to}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^backed up .*sparekey\.db to .*backup\.db \(\d+ bytes, integrity check ok\)\n$`).MatchString(out.String()) {
		t.Errorf("output %q", out.String())
	}
	ctx := context.Background()
	copyDB, err := sqlite.OpenReadOnly(ctx, to)
	if err != nil {
		t.Fatal(err)
	}
	defer copyDB.Close()
	if err := copyDB.IntegrityCheck(ctx); err != nil {
		t.Error(err)
	}
	if err := copyDB.CheckSchema(ctx); err != nil {
		t.Error(err)
	}
	if ps, err := copyDB.Projects(ctx); err != nil || len(ps) != 1 {
		t.Errorf("the copy holds %d projects (%v), want 1", len(ps), err)
	}

	for _, c := range []struct {
		name string
		args []string
		err  string
	}{
		{"the target exists", []string{"--db", "sqlite:" + src, "--to", to}, "already exists; give a new file name"},
		{"no target", []string{"--db", "sqlite:" + src}, "--to (SPAREKEY_TO) is required: the backup file to create"},
		{"no such database", []string{"--db", "sqlite:" + filepath.Join(dir, "nope", "x.db"), "--to", filepath.Join(dir, "b2.db")}, "no such file or directory"},
		{"PostgreSQL", []string{"--db", "postgres://u:p@h/db", "--to", filepath.Join(dir, "b3.db")}, "pg_dump --format=custom"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := backup(context.Background(), c.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("backup: %v, want an error containing %q", err, c.err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Error("backup of a missing database created its folder")
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, ".*partial*")); len(matches) > 0 {
		t.Errorf("partial files left behind: %v", matches)
	}
}

// TestServeMetricsAddr: with --metrics-addr, /metrics is served there and not on --addr, and
// serve returns nil once its context ends (SIGTERM in main).
func TestServeMetricsAddr(t *testing.T) {
	opsCleanEnv(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &opsLockedBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, []string{"--db", "sqlite:" + filepath.Join(dir, "sk.db"), "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
			"--master-key", opsMasterKey(t)}, io.Discard, logs)
	}()
	url := func(msg string) string {
		re := regexp.MustCompile(`msg="` + msg + `" .*url=(http://\S+)`)
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if m := re.FindStringSubmatch(logs.String()); m != nil {
				return m[1]
			}
			select {
			case err := <-done:
				t.Fatalf("serve ended: %v\n%s", err, logs.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		t.Fatalf("no %q line:\n%s", msg, logs.String())
		return ""
	}
	metricsURL, base := url("metrics listening"), url("sparekey listening")
	get := func(u string) (int, string) {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	get(base + "/healthz")
	if status, body := get(metricsURL); status != 200 || !strings.Contains(body, `sparekey_http_requests_total{method="GET",route="GET /healthz",status="200"} 1`) ||
		!strings.Contains(body, `sparekey_db_pool_max_open_connections{pool="sqlite_write"} 1`) || !strings.Contains(body, "go_goroutines") {
		t.Errorf("GET %s: %d\n%s", metricsURL, status, body)
	}
	if status, _ := get(base + "/metrics"); status != 404 {
		t.Errorf("GET /metrics on --addr: %d, want 404 when --metrics-addr is set", status)
	}
	if status, _ := get(strings.TrimSuffix(metricsURL, "/metrics") + "/healthz"); status != 404 {
		t.Errorf("GET /healthz on --metrics-addr: %d, want 404: it serves only /metrics", status)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after its context ended: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not return after its context ended")
	}
	if !regexp.MustCompile(`msg="shutting down"[^\n]*\n.*msg="stopped: every in-flight request finished"`).MatchString(logs.String()) {
		t.Errorf("shutdown log:\n%s", logs.String())
	}
}

type opsLockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *opsLockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *opsLockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

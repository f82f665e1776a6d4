package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	projectIDShape = regexp.MustCompile(`^project-test-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	bannerSecret   = regexp.MustCompile(`(?m)^\s*secret:\s+(secret-test-\S+)\s*$`)
)

// TestServeFirstStart is what an operator sees on `sparekey serve` in an empty directory, then
// on a restart, then with the wrong master key (DESIGN §2 and §4, README).
func TestServeFirstStart(t *testing.T) {
	dir := t.TempDir()
	// No flags at all; only the port comes from the environment twin of --addr, so that the
	// test does not depend on 127.0.0.1:8080 being free.
	env := append(cleanEnv(), "SPAREKEY_ADDR=127.0.0.1:0")
	first := startServer(t, serverOptions{Dir: dir, Env: env, NoFlags: true})

	dataDir := filepath.Join(dir, "sparekey-data")
	if _, err := os.Stat(filepath.Join(dataDir, "sparekey.db")); err != nil {
		t.Errorf("serve with no flags did not create ./sparekey-data/sparekey.db: %v", err)
	}
	keyPath := filepath.Join(dataDir, "master.key")
	fi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatalf("serve with no master key did not generate ./sparekey-data/master.key: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("master.key has mode %#o, want 0600", perm)
	}
	generatedKey, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(first.Stderr(), "master.key") {
		t.Errorf("serve generated a master key without saying so on stderr:\n%s", first.Stderr())
	}

	// The banner: on stdout, once, never on stderr (which is the log).
	pid := first.ProjectID
	if !projectIDShape.MatchString(pid) {
		t.Errorf("the banner's project_id %q is not project-test-<uuid v4>", pid)
	}
	m := bannerSecret.FindStringSubmatch(first.Stdout())
	if m == nil {
		t.Fatalf("the first-start banner on stdout has no secret line:\n%s", first.Stdout())
	}
	secret := m[1]
	if strings.Contains(first.Stderr(), secret) {
		t.Errorf("the project secret appears on stderr (the log):\n%s", first.Stderr())
	}
	if strings.Contains(first.Stderr(), "sparekey created a project") || strings.Contains(first.Stderr(), "secret:") {
		t.Errorf("the first-start banner appears on stderr:\n%s", first.Stderr())
	}
	creds := project{ID: pid, Secret: secret}
	wantCredentialsWork(t, first, creds)

	if code := first.Stop(t); code != 0 {
		t.Errorf("serve exited %d after SIGTERM, want 0", code)
	}

	t.Run("a restart prints no new project", func(t *testing.T) {
		again := startServer(t, serverOptions{Dir: dir, Env: env, NoFlags: true, ProjectID: pid})
		if strings.Contains(again.Stdout(), "project_id") || strings.Contains(again.Stdout(), "secret-test-") {
			t.Errorf("the second start printed project credentials:\n%s", again.Stdout())
		}
		key, err := os.ReadFile(keyPath)
		if err != nil || string(key) != string(generatedKey) {
			t.Errorf("the second start changed master.key (err %v)", err)
		}
		wantCredentialsWork(t, again, creds)
	})

	t.Run("the wrong master key is a refusal to start", func(t *testing.T) {
		wrong := append(slices.Clone(env), "SPAREKEY_MASTER_KEY="+randomHex(t, 32))
		res := runSparekey(t, dir, wrong, "serve")
		if res.ExitCode == 0 {
			t.Fatalf("serve with the wrong SPAREKEY_MASTER_KEY exited 0\nstdout: %s\nstderr: %s", res.Stdout, res.Stderr)
		}
		if !strings.Contains(strings.ToLower(res.Stderr), "master key") {
			t.Errorf("serve with the wrong master key exited %d without naming the master key on stderr:\n%s", res.ExitCode, res.Stderr)
		}
		if strings.Contains(res.Stdout, "project_id") {
			t.Errorf("serve with the wrong master key printed a project:\n%s", res.Stdout)
		}
	})
}

// wantCredentialsWork makes one authenticated call with creds.
func wantCredentialsWork(t *testing.T, srv *server, creds project) {
	t.Helper()
	r := srv.Client(creds).do(t, http.MethodPost, "/v1/b2b/organizations/search", map[string]any{})
	if r.Status != http.StatusOK {
		t.Errorf("organizations/search with the banner's credentials: HTTP %d %s, want 200: %s", r.Status, r.ErrorType(), r.Raw)
	}
}

func TestProjectCreateJSON(t *testing.T) {
	db := newSQLite(t)
	res := runSparekey(t, "", db.Env, "project", "create", "--db", db.URL, "--json")
	if res.ExitCode != 0 {
		t.Fatalf("project create --json exited %d\nstdout: %s\nstderr: %s", res.ExitCode, res.Stdout, res.Stderr)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil {
		t.Fatalf("project create --json printed %q: %v", res.Stdout, err)
	}
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"project_id", "secret"}) {
		t.Fatalf("project create --json printed the keys %q, want exactly project_id and secret: %s", keys, res.Stdout)
	}
	pid, _ := got["project_id"].(string)
	secret, _ := got["secret"].(string)
	if !projectIDShape.MatchString(pid) {
		t.Errorf("project_id = %#v, want project-test-<uuid v4>", got["project_id"])
	}
	if !strings.HasPrefix(secret, "secret-test-") || len(secret) <= len("secret-test-") {
		t.Errorf("secret = %#v, want secret-test-<opaque>", got["secret"])
	}
}

func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		wantExit int
		stdout   string // a substring stdout must hold
	}{
		{"help serve", []string{"help", "serve"}, 0, "Usage: sparekey serve"},
		{"an unknown command", []string{"frobnicate"}, 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runSparekey(t, "", cleanEnv(), tc.args...)
			if res.ExitCode != tc.wantExit {
				t.Errorf("sparekey %s exited %d, want %d\nstdout: %s\nstderr: %s", strings.Join(tc.args, " "), res.ExitCode, tc.wantExit, res.Stdout, res.Stderr)
			}
			if !strings.Contains(res.Stdout, tc.stdout) {
				t.Errorf("sparekey %s printed %q on stdout, want it to contain %q", strings.Join(tc.args, " "), res.Stdout, tc.stdout)
			}
		})
	}
}

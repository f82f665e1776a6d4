// Package compat_test runs the official Stytch Node SDK against a freshly
// built sparekey: it builds cmd/sparekey, creates a project in a temporary
// database, serves it on a loopback port and runs the node:test suite in this
// directory with the project's credentials. The suite runs twice: on SQLite,
// and on PostgreSQL when SPAREKEY_TEST_POSTGRES_URL names one.
package compat_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/store/testdb"
)

// The SDK version CONTRACT.md §9 was verified against; package-lock.json pins it.
const stytchVersion = "14.2.0"

func TestNodeSDK(t *testing.T) {
	node := requireNode(t)

	bin := filepath.Join(t.TempDir(), "sparekey")
	build := exec.Command("go", "build", "-o", bin, "./cmd/sparekey")
	build.Dir = ".." // the module root; go test runs in compat/
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/sparekey: %v\n%s", err, out)
	}

	t.Run("SQLite", func(t *testing.T) {
		dir := t.TempDir()
		db := "sqlite:" + filepath.Join(dir, "sparekey.db")
		env := append(cleanEnv(), "SPAREKEY_MASTER_KEY="+randomHex(t, 32))
		pid, secret := createProject(t, bin, db, env)
		runSuite(t, node, startServer(t, bin, db, env, dir, pid), pid, secret)
	})

	t.Run("PostgreSQL", func(t *testing.T) {
		dir := t.TempDir()
		db := newPostgresSchema(t)
		// PostgreSQL needs the master key given and the schema migrated on purpose: serve
		// creates no project there and refuses an unmigrated schema.
		env := append(cleanEnv(), "SPAREKEY_MASTER_KEY="+randomHex(t, 32))
		runSparekey(t, bin, env, "migrate", "--db", db)
		pid, secret := createProject(t, bin, db, env)
		runSuite(t, node, startServer(t, bin, db, env, dir, pid), pid, secret)
	})
}

// runSuite runs every *.test.mjs in compat/ against the server at base.
func runSuite(t *testing.T, node, base, pid, secret string) {
	t.Helper()
	tests, err := filepath.Glob("*.test.mjs")
	if err != nil || len(tests) == 0 {
		t.Fatalf("no *.test.mjs in compat/ (%v)", err)
	}
	timeout := suiteTimeout(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := append([]string{"--test", "--test-reporter=spec"}, tests...)
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Env = append(cleanEnv(),
		"SPAREKEY_URL="+base,
		"SPAREKEY_PROJECT_ID="+pid,
		"SPAREKEY_SECRET="+secret,
		"NO_COLOR=1",
	)
	cmd.WaitDelay = 5 * time.Second
	if err := streamToLog(t, cmd); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w after %v", ctx.Err(), timeout)
		}
		t.Fatalf("node --test: %v", err)
	}
}

// newPostgresSchema makes an empty schema in the database SPAREKEY_TEST_POSTGRES_URL names,
// dropped when the test ends, and returns a --db URL whose connections use it (search_path in
// the query, which pgx sends as a startup parameter). Without the variable the test is skipped,
// under CI=true it fails.
func newPostgresSchema(t *testing.T) string {
	t.Helper()
	base := os.Getenv("SPAREKEY_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SPAREKEY_TEST_POSTGRES_URL is not set; CI must run the Node SDK suite on PostgreSQL")
		}
		t.Skip("SPAREKEY_TEST_POSTGRES_URL is not set")
	}
	// Registered before the server starts, so it runs after the server has stopped.
	return testdb.PostgresSchema(t, base, "sk_compat_")
}

// runSparekey runs a sparekey command that must succeed.
func runSparekey(t *testing.T, bin string, env []string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sparekey %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// requireNode returns the node binary, or skips (fails under CI) when node or
// the pinned SDK is not installed.
func requireNode(t *testing.T) string {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...) + `; install Node.js 20+ and run "npm ci" in compat/ to get the pinned Stytch Node SDK`
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable("node is not on PATH")
	}
	raw, err := os.ReadFile(filepath.Join("node_modules", "stytch", "package.json"))
	if err != nil {
		unavailable("compat/node_modules/stytch is missing")
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(raw, &pkg); err != nil || pkg.Version != stytchVersion {
		// A stale install would test a different SDK than the contract names.
		t.Fatalf("compat/node_modules/stytch is version %q, want %s; run \"npm ci\" in compat/", pkg.Version, stytchVersion)
	}
	return node
}

// cleanEnv is the test's environment without SPAREKEY_* variables: every
// server flag has such a twin, and the suite expects the defaults (a lock
// after 10 failures lasting 1h, 12-symbol codes).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SPAREKEY_") {
			env = append(env, kv)
		}
	}
	return env
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func createProject(t *testing.T, bin, db string, env []string) (pid, secret string) {
	t.Helper()
	cmd := exec.Command(bin, "project", "create", "--db", db, "--json")
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sparekey project create: %v\nstdout: %s\nstderr: %s", err, stdout.Bytes(), stderr.Bytes())
	}
	var p struct {
		ProjectID string `json:"project_id"`
		Secret    string `json:"secret"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &p); err != nil || p.ProjectID == "" || p.Secret == "" {
		t.Fatalf("sparekey project create --json printed %q (stderr %q), want {\"project_id\": ..., \"secret\": ...}", stdout.Bytes(), stderr.Bytes())
	}
	return p.ProjectID, p.Secret
}

// startServer serves the database on a free loopback port until the test
// ends and returns the base URL in the form CONTRACT.md §9 gives the Node SDK.
func startServer(t *testing.T, bin, db string, env []string, dir, pid string) string {
	t.Helper()
	addr := freeAddr(t)
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		logFile.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("sparekey server output:\n%s", out)
		}
	})

	cmd := exec.Command(bin, "serve", "--addr", addr, "--db", db)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("sparekey serve: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Registered after the log dump, so it runs first and the log is complete.
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			t.Log("sparekey did not stop within 5s of SIGTERM; killing it")
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	// The JWKS route needs no credentials (§1), so it doubles as a readiness probe.
	jwks := "http://" + addr + "/v1/b2b/sessions/jwks/" + pid
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err // let the cleanup see that it has already stopped
			t.Fatalf("sparekey serve exited before it was ready: %v", err)
		default:
		}
		resp, err := client.Get(jwks)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			t.Fatalf("sparekey was not ready within 15s: GET %s: %v", jwks, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "http://" + addr + "/"
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// suiteTimeout leaves room before go test's own deadline so that a hung node
// process is reported with its output instead of a panic.
func suiteTimeout(t *testing.T) time.Duration {
	d := 5 * time.Minute
	if deadline, ok := t.Deadline(); ok {
		if left := time.Until(deadline) - 15*time.Second; left < d {
			d = left
		}
	}
	return d
}

// streamToLog runs cmd with stdout and stderr merged, logging each line as it
// arrives.
func streamToLog(t *testing.T, cmd *exec.Cmd) error {
	t.Helper()
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
		for sc.Scan() {
			t.Log(strings.TrimRight(sc.Text(), "\r"))
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	err := cmd.Wait()
	w.Close()
	<-done
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("exited with status %d (the failing assertions are logged above)", exit.ExitCode())
	}
	return err
}

// Package e2e runs the real sparekey binary as an operator would: TestMain builds
// cmd/sparekey once, and each test starts `sparekey serve` processes on loopback
// ports with their own data, talks to them over HTTP and reads what they print.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sparekeyBin is the binary TestMain builds for this run.
var sparekeyBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sparekey-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	sparekeyBin = filepath.Join(dir, "sparekey")
	build := exec.Command("go", "build", "-o", sparekeyBin, "./cmd/sparekey")
	build.Dir = ".." // the module root; go test runs in e2e/
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/sparekey: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// cleanEnv is this process's environment without SPAREKEY_* variables: every
// flag has such a twin, and a stray one from the developer's shell or CI (a
// lock threshold, a master key, a database) would change what the tests see.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SPAREKEY_") {
			env = append(env, kv)
		}
	}
	return env
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// database is a database together with the master key its data is sealed
// under: what `project create` and `serve` must agree on.
type database struct {
	URL       string   // the --db value
	Path      string   // the SQLite file
	MasterKey string   // 64 hex characters
	Env       []string // cleanEnv() plus SPAREKEY_MASTER_KEY
}

// newSQLite returns a SQLite file in a fresh temp dir and a fresh random master key.
func newSQLite(t testing.TB) database {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sparekey.db")
	key := randomHex(t, 32)
	return database{
		URL:       "sqlite:" + path,
		Path:      path,
		MasterKey: key,
		Env:       append(cleanEnv(), "SPAREKEY_MASTER_KEY="+key),
	}
}

// command is the outcome of one finished sparekey run.
type command struct {
	Stdout, Stderr string
	ExitCode       int
}

// runSparekey runs the binary to completion in dir (a fresh temp dir when
// empty) with exactly env. A run that takes 30 s is killed and fails the test:
// every command these tests run without `serve` ends on its own.
func runSparekey(t testing.TB, dir string, env []string, args ...string) command {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sparekeyBin, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := command{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("sparekey %s did not finish within 30s\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Stdout, res.Stderr)
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
	case err != nil:
		t.Fatalf("sparekey %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// project is one project's credentials.
type project struct {
	ID, Secret string
}

// createProject runs `sparekey project create --json` against db with exactly env.
func createProject(t testing.TB, db string, env []string) project {
	t.Helper()
	res := runSparekey(t, "", env, "project", "create", "--db", db, "--json")
	if res.ExitCode != 0 {
		t.Fatalf("sparekey project create exited %d\nstdout: %s\nstderr: %s", res.ExitCode, res.Stdout, res.Stderr)
	}
	var p struct {
		ProjectID string `json:"project_id"`
		Secret    string `json:"secret"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &p); err != nil || p.ProjectID == "" || p.Secret == "" {
		t.Fatalf("sparekey project create --json printed %q (stderr %q), want {\"project_id\": ..., \"secret\": ...}", res.Stdout, res.Stderr)
	}
	return project{ID: p.ProjectID, Secret: p.Secret}
}

// serverOptions says how to run `sparekey serve`.
type serverOptions struct {
	DB        string   // --db; empty passes no --db (the server's default, relative to Dir)
	Env       []string // the complete environment; nil is cleanEnv(), which has no master key
	Args      []string // more flags, e.g. --lock-threshold 1000
	Dir       string   // working directory; empty is a fresh temp dir
	Addr      string   // --addr; empty is 127.0.0.1:0, so the kernel picks a free port
	NoFlags   bool     // pass Args only: no --addr, no --db (set them through Env, or not at all)
	ProjectID string   // the JWKS the readiness probe asks for; empty is the first-start banner's
}

// server is a running `sparekey serve` process.
type server struct {
	URL       string // http://127.0.0.1:PORT, no trailing slash
	ProjectID string // the project the readiness probe found
	Dir       string // the working directory

	cmd      *exec.Cmd
	exited   chan struct{}
	exitErr  error
	stopOnce sync.Once
	exitCode int

	output, stdout, stderr lockedBuffer
}

// lockedBuffer collects what a process prints while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Output is everything the server printed so far, stdout and stderr interleaved.
func (s *server) Output() string { return s.output.String() }

// Stdout and Stderr are the two streams apart.
func (s *server) Stdout() string { return s.stdout.String() }
func (s *server) Stderr() string { return s.stderr.String() }

var (
	listeningURL = regexp.MustCompile(`msg="sparekey listening".* url=(http://\S+)|"msg":"sparekey listening".*"url":"(http://[^"]+)"`)
	bannerID     = regexp.MustCompile(`(?m)^\s*project_id:\s+(project-test-[0-9a-f-]{36})\s*$`)
)

// startServer starts `sparekey serve` and waits until GET /v1/b2b/sessions/jwks/<project>
// answers 200 (15 s at most). t.Cleanup stops it with SIGTERM (SIGKILL 5 s later) and, when the
// test failed, logs what it printed.
func startServer(t testing.TB, opts serverOptions) *server {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Env == nil {
		opts.Env = cleanEnv()
	}
	args := []string{"serve"}
	if !opts.NoFlags {
		addr := opts.Addr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		args = append(args, "--addr", addr)
		if opts.DB != "" {
			args = append(args, "--db", opts.DB)
		}
	}
	args = append(args, opts.Args...)

	s := &server{Dir: opts.Dir, exited: make(chan struct{})}
	s.cmd = exec.Command(sparekeyBin, args...)
	s.cmd.Dir = opts.Dir
	s.cmd.Env = opts.Env
	s.cmd.Stdout = io.MultiWriter(&s.output, &s.stdout)
	s.cmd.Stderr = io.MultiWriter(&s.output, &s.stderr)
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("sparekey %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		s.exitErr = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output of sparekey %s:\n%s", strings.Join(args, " "), s.Output())
		}
	})
	// Registered after the dump, so it runs first and the dump is complete.
	t.Cleanup(func() { s.Stop(t) })

	probe := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	var last string
	for {
		select {
		case <-s.exited:
			t.Fatalf("sparekey %s exited before it was ready (%v)", strings.Join(args, " "), s.exitErr)
		default:
		}
		switch {
		case s.URL == "":
			if m := listeningURL.FindStringSubmatch(s.Output()); m != nil {
				s.URL = m[1] + m[2]
				continue
			}
			last = `no "sparekey listening" line with a url yet`
		case s.ProjectID == "":
			s.ProjectID = opts.ProjectID
			if m := bannerID.FindStringSubmatch(s.Stdout()); s.ProjectID == "" && m != nil {
				s.ProjectID = m[1]
			}
			if s.ProjectID != "" {
				continue
			}
			last = "no project id given and none in a first-start banner on stdout"
		default:
			resp, err := probe.Get(s.URL + "/v1/b2b/sessions/jwks/" + s.ProjectID)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return s
				}
				err = fmt.Errorf("HTTP %d", resp.StatusCode)
			}
			last = "GET jwks: " + err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("sparekey %s was not ready within 15s: %s", strings.Join(args, " "), last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop sends SIGTERM, waits up to 5 s, then kills, and returns the exit code (-1 when a
// signal ended the process). Calling it again returns the same code.
func (s *server) Stop(t testing.TB) int {
	t.Helper()
	return s.end(t, syscall.SIGTERM)
}

// DumpGoroutines ends the server with SIGQUIT, on which the Go runtime prints the stack of
// every goroutine to stderr, into Output: the diagnosis of a server that stopped answering.
func (s *server) DumpGoroutines(t testing.TB) {
	t.Helper()
	s.end(t, syscall.SIGQUIT)
}

// dumpIfStuck runs burst, which sends requests to s and waits for their answers. When burst
// has not returned after patience, the server is presumed stuck: its goroutines are dumped while
// the requests are still in flight (so the dump shows where they wait), which ends the server
// and with it burst. It reports whether that happened. patience bounds a hang, it does not
// measure speed: give it many times what the burst needs on a loaded machine.
func (s *server) dumpIfStuck(t testing.TB, patience time.Duration, burst func()) (stuck bool) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		burst()
	}()
	select {
	case <-done:
		return false
	case <-time.After(patience):
		s.DumpGoroutines(t)
		<-done
		return true
	}
}

// end sends sig once and waits for the process (5 s, then SIGKILL).
func (s *server) end(t testing.TB, sig syscall.Signal) int {
	t.Helper()
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Signal(sig)
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			t.Errorf("sparekey did not stop within 5s of %v; killing it", sig)
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		s.exitCode = s.cmd.ProcessState.ExitCode()
	})
	return s.exitCode
}

// Client returns a JSON client that authenticates as p.
func (s *server) Client(p project) *apiClient {
	return &apiClient{
		base:      s.URL,
		projectID: p.ID,
		secret:    p.Secret,
		http: &http.Client{
			Timeout: 30 * time.Second,
			// Enough idle connections that a burst of parallel requests reuses them.
			Transport: &http.Transport{MaxIdleConnsPerHost: 128},
		},
	}
}

// apiClient is a tiny JSON client with HTTP Basic project credentials.
type apiClient struct {
	base, projectID, secret string
	http                    *http.Client
}

// apiResponse is one answer: the status, headers and the body decoded as a JSON object.
type apiResponse struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

// call sends body (nil sends none) as JSON and decodes the JSON object it gets back. It returns
// errors instead of failing the test, so goroutines may use it.
func (c *apiClient) call(method, path string, body any) (apiResponse, error) {
	return c.callContext(context.Background(), method, path, body)
}

// callContext is call with a context, e.g. one carrying an httptrace.ClientTrace.
func (c *apiClient) callContext(ctx context.Context, method, path string, body any) (apiResponse, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return apiResponse{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return apiResponse{}, err
	}
	req.SetBasicAuth(c.projectID, c.secret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return apiResponse{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return apiResponse{}, fmt.Errorf("%s %s: reading the body: %w", method, path, err)
	}
	out := apiResponse{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&out.Body); err != nil || out.Body == nil {
		return out, fmt.Errorf("%s %s: HTTP %d with a body that is not a JSON object: %q", method, path, resp.StatusCode, raw)
	}
	return out, nil
}

// do is call for the test goroutine: a transport or decoding failure fails the test.
func (c *apiClient) do(t testing.TB, method, path string, body any) apiResponse {
	t.Helper()
	r, err := c.call(method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// ok is do that also requires HTTP 200.
func (c *apiClient) ok(t testing.TB, method, path string, body any) apiResponse {
	t.Helper()
	r := c.do(t, method, path, body)
	if r.Status != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d, want 200: %s", method, path, r.Status, r.Raw)
	}
	return r
}

// ErrorType is the error_type of an error envelope ("" on success).
func (r apiResponse) ErrorType() string {
	s, _ := r.Body["error_type"].(string)
	return s
}

// field walks nested objects of the body.
func (r apiResponse) field(keys ...string) (any, bool) {
	var v any = r.Body
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// Str is the string at keys; anything else fails the test.
func (r apiResponse) Str(t testing.TB, keys ...string) string {
	t.Helper()
	v, ok := r.field(keys...)
	s, isStr := v.(string)
	if !ok || !isStr {
		t.Fatalf("%s is %#v, want a string, in %s", strings.Join(keys, "."), v, r.Raw)
	}
	return s
}

// Int is the JSON integer at keys; anything else fails the test.
func (r apiResponse) Int(t testing.TB, keys ...string) int64 {
	t.Helper()
	v, ok := r.field(keys...)
	n, isNum := v.(json.Number)
	i, err := n.Int64()
	if !ok || !isNum || err != nil {
		t.Fatalf("%s is %#v, want an integer, in %s", strings.Join(keys, "."), v, r.Raw)
	}
	return i
}

// Bool is the JSON boolean at keys; anything else fails the test.
func (r apiResponse) Bool(t testing.TB, keys ...string) bool {
	t.Helper()
	v, ok := r.field(keys...)
	b, isBool := v.(bool)
	if !ok || !isBool {
		t.Fatalf("%s is %#v, want a boolean, in %s", strings.Join(keys, "."), v, r.Raw)
	}
	return b
}

// Strings is the array of strings at keys; anything else fails the test.
func (r apiResponse) Strings(t testing.TB, keys ...string) []string {
	t.Helper()
	v, ok := r.field(keys...)
	arr, isArr := v.([]any)
	if !ok || !isArr {
		t.Fatalf("%s is %#v, want an array of strings, in %s", strings.Join(keys, "."), v, r.Raw)
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		s, isStr := e.(string)
		if !isStr {
			t.Fatalf("%s[%d] is %#v, want a string, in %s", strings.Join(keys, "."), i, e, r.Raw)
		}
		out[i] = s
	}
	return out
}

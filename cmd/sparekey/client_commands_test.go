package main

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/sparekey/sparekey/internal/api"
	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/secret"
	"github.com/sparekey/sparekey/internal/store/sqlite"
)

// TestClientCommandsDocumented holds every client command to its help text: the usage names the
// command, every flag it accepts and an example, and `sparekey help <command>` prints it.
func TestClientCommandsDocumented(t *testing.T) {
	listed := map[string]command{}
	for _, c := range commands() {
		listed[c.name] = c
	}
	for _, cc := range clientCommands() {
		t.Run(cc.name, func(t *testing.T) {
			c, ok := listed[cc.name]
			if !ok || c.usage != cc.usage || c.summary == "" {
				t.Fatalf("commands() lists %q as %+v", cc.name, c)
			}
			if !strings.HasPrefix(cc.usage, "Usage: sparekey "+cc.name+" ") {
				t.Errorf("usage does not start with the command line:\n%s", cc.usage)
			}
			example := cc.usage[strings.Index(cc.usage, "\nExample:")+1:]
			if !strings.HasPrefix(example, "Example:") || !strings.Contains(example, "sparekey "+cc.name+" ") {
				t.Errorf("usage has no example of %q:\n%s", cc.name, cc.usage)
			}
			fs := flag.NewFlagSet(cc.name, flag.ContinueOnError)
			var conn connectionFlags
			conn.register(fs)
			cc.flags(fs)
			fs.VisitAll(func(f *flag.Flag) {
				if !regexp.MustCompile(`(^|[\s(|,])--` + regexp.QuoteMeta(f.Name) + `\b`).MatchString(cc.usage) {
					t.Errorf("usage does not document --%s", f.Name)
				}
			})
			var out bytes.Buffer
			if err := run(context.Background(), append([]string{"help"}, strings.Fields(cc.name)...), &out, io.Discard); err != nil || out.String() != cc.usage {
				t.Errorf("sparekey help %s: %v, printed %q", cc.name, err, out.String())
			}
		})
	}
}

// cli is the built sparekey binary and a real server for it to call.
type cli struct {
	bin       string
	url       string
	projectID string
	secret    string
	lastBody  func() []byte // the body of the server's latest response
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "sparekey")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "sparekey.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, secret.MasterKeySize)
	rand.Read(key)
	keys, err := secret.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := auth.NewService(db, keys, auth.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	project, sec, err := svc.CreateProject(ctx)
	if err != nil {
		t.Fatal(err)
	}
	handler := api.New(svc, slog.New(slog.DiscardHandler))
	var (
		mu   sync.Mutex
		last []byte
	)
	// Keep a copy of each response body, to compare with what the command printed.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tee := &teeWriter{ResponseWriter: w}
		handler.ServeHTTP(tee, r)
		mu.Lock()
		last = tee.buf.Bytes()
		mu.Unlock()
	}))
	t.Cleanup(ts.Close)
	return &cli{
		bin: bin, url: ts.URL, projectID: project.ID, secret: sec,
		lastBody: func() []byte { mu.Lock(); defer mu.Unlock(); return last },
	}
}

type teeWriter struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (w *teeWriter) Write(b []byte) (int, error) {
	w.buf.Write(b)
	return w.ResponseWriter.Write(b)
}

// connEnv names the server and project through the environment twins.
func (c *cli) connEnv() []string {
	return []string{"SPAREKEY_URL=" + c.url, "SPAREKEY_PROJECT_ID=" + c.projectID, "SPAREKEY_SECRET=" + c.secret}
}

type result struct {
	stdout, stderr string
	code           int
}

// exec runs the binary with env added to a clean environment (no stray SPAREKEY_* twins).
func (c *cli) exec(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(c.bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SPAREKEY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	code := 0
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// ok runs a command that must succeed and print the server's response body, byte for byte; it
// returns the body decoded.
func (c *cli) ok(t *testing.T, env []string, args ...string) map[string]any {
	t.Helper()
	r := c.exec(t, env, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("sparekey %s: exit %d, stderr %q", strings.Join(args[:2], " "), r.code, r.stderr)
	}
	if body := c.lastBody(); r.stdout != string(body) {
		t.Fatalf("sparekey %s printed\n%s\nwant the response body\n%s", strings.Join(args[:2], " "), r.stdout, body)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out["status_code"] != float64(200) {
		t.Fatalf("sparekey %s: stdout %q is not a success body (%v)", strings.Join(args[:2], " "), r.stdout, err)
	}
	return out
}

var apiErrorLine = regexp.MustCompile(`^([a-z_]+): ([^\n]+) \((request-id-test-[0-9a-f-]{36})\)\n$`)

// fails runs a command the API must refuse with errorType: one line on stderr, exit 1.
func (c *cli) fails(t *testing.T, env []string, errorType string, args ...string) {
	t.Helper()
	r := c.exec(t, env, args...)
	m := apiErrorLine.FindStringSubmatch(r.stderr)
	if r.code != 1 || r.stdout != "" || m == nil || m[1] != errorType {
		t.Fatalf("sparekey %s: exit %d, stdout %q, stderr %q; want exit 1 and %q on stderr", strings.Join(args[:2], " "), r.code, r.stdout, r.stderr, errorType+": … (request-id-test-…)")
	}
	var body struct {
		RequestID, ErrorType, ErrorMessage string
	}
	json.Unmarshal(c.lastBody(), &struct {
		RequestID    *string `json:"request_id"`
		ErrorType    *string `json:"error_type"`
		ErrorMessage *string `json:"error_message"`
	}{&body.RequestID, &body.ErrorType, &body.ErrorMessage})
	if m[2] != body.ErrorMessage || m[3] != body.RequestID {
		t.Errorf("stderr %q does not quote the error body %s", r.stderr, c.lastBody())
	}
}

// usage runs a command that must stop at a usage mistake: exit 2, nothing on stdout.
func (c *cli) usage(t *testing.T, env []string, wantStderr string, args ...string) {
	t.Helper()
	r := c.exec(t, env, args...)
	if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, wantStderr) {
		t.Fatalf("sparekey %v: exit %d, stdout %q, stderr %q; want exit 2 and %q", args, r.code, r.stdout, r.stderr, wantStderr)
	}
}

func str(m map[string]any, path ...string) string {
	var v any = m
	for _, k := range path {
		obj, _ := v.(map[string]any)
		v = obj[k]
	}
	s, _ := v.(string)
	return s
}

func strs(m map[string]any, key string) []string {
	var out []string
	list, _ := m[key].([]any)
	for _, v := range list {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// TestClientCommands runs the built binary through the recovery-code life cycle against a real
// server, then its failure modes.
func TestClientCommands(t *testing.T) {
	c := newCLI(t)
	env := c.connEnv()

	org := c.ok(t, env, "organizations", "create", "--organization-name", "Acme Inc", "--organization-slug", "acme",
		"--mfa-policy", "REQUIRED_FOR_ALL", "--trusted-metadata", `{"tier":1}`, "--allowed-auth-methods", "password,sso")
	orgID := str(org, "organization", "organization_id")
	if str(org, "organization", "mfa_policy") != "REQUIRED_FOR_ALL" || !strings.HasPrefix(orgID, "organization-test-") {
		t.Fatalf("created organization: %v", org)
	}
	c.ok(t, env, "organizations", "get", "--organization-id", "acme")

	// Flags may come from their environment twins too.
	member := c.ok(t, append(env, "SPAREKEY_ORGANIZATION_ID=acme"), "members", "create", "--email-address", "ada@example.com", "--name", "Ada", "--roles", "stytch_admin")
	memberID := str(member, "member_id")
	if str(member, "member", "name") != "Ada" || member["member"].(map[string]any)["is_admin"] != true {
		t.Fatalf("created member: %v", member)
	}
	got := c.ok(t, env, "members", "get", "--organization-id", "acme", "--email-address", "ADA@example.com")
	if str(got, "member_id") != memberID {
		t.Fatalf("member by email: %v", got)
	}

	salt := []byte("salt-for-the-cli-test")
	dk, err := pbkdf2.Key(sha256.New, "correct horse battery staple", salt, 1000, 32)
	if err != nil {
		t.Fatal(err)
	}
	config := `{"salt":"` + base64.StdEncoding.EncodeToString(salt) + `","iteration_amount":1000,"key_length":32,"algorithm":"sha256"}`
	migrated := c.ok(t, env, "passwords", "migrate", "--organization-id", "acme", "--email-address", "ada@example.com",
		"--hash-type", "pbkdf_2", "--hash", base64.StdEncoding.EncodeToString(dk), "--hash-config", config)
	if migrated["member_created"] != false || str(migrated, "member_id") != memberID {
		t.Fatalf("password migrate: %v", migrated)
	}

	totp := c.ok(t, env, "totp", "create", "--organization-id", "acme", "--member-id", memberID, "--expiration-minutes", "10")
	codes := strs(totp, "recovery_codes")
	if len(codes) != 10 {
		t.Fatalf("totp create: %v", totp)
	}

	login := c.ok(t, append(env, "SPAREKEY_PASSWORD=correct horse battery staple"), "passwords", "authenticate", "--organization-id", "acme", "--email-address", "ada@example.com")
	ist := str(login, "intermediate_session_token")
	if login["member_authenticated"] != false || ist == "" {
		t.Fatalf("password login: %v", login)
	}
	c.fails(t, env, "unauthorized_credentials", "passwords", "authenticate", "--organization-id", "acme", "--email-address", "ada@example.com", "--password", "wrong")

	recovered := c.ok(t, env, "recovery-codes", "recover", "--organization-id", "acme", "--member-id", memberID, "--recovery-code", strings.ToUpper(codes[0]),
		"--intermediate-session-token", ist, "--session-duration-minutes", "90", "--session-custom-claims", `{"team":"blue"}`)
	token := str(recovered, "session_token")
	if recovered["recovery_codes_remaining"] != float64(9) || token == "" || str(recovered, "member_session", "custom_claims", "team") != "blue" {
		t.Fatalf("recover: %v", recovered)
	}
	c.fails(t, env, "unable_to_authenticate_recovery_code", "recovery-codes", "recover", "--organization-id", "acme", "--member-id", memberID,
		"--recovery-code", codes[0], "--session-token", token)
	c.fails(t, env, "invalid_session_missing_primary_factor", "recovery-codes", "recover", "--organization-id", "acme", "--member-id", memberID, "--recovery-code", codes[1])

	// The audit trail saw the recover, and the replay of its code.
	used := c.ok(t, env, "events", "list", "--type", "recovery_code.used,recovery_code.replayed", "--member-id", memberID)
	evs, _ := used["events"].([]any)
	if len(evs) != 2 || used["next_cursor"] != nil {
		t.Fatalf("events list: %v", used)
	}
	if newest := evs[0].(map[string]any); newest["type"] != "recovery_code.replayed" || evs[1].(map[string]any)["data"].(map[string]any)["remaining"] != float64(9) {
		t.Fatalf("events, newest first: %v", evs)
	}
	c.usage(t, env, "--since must be an RFC 3339 time", "events", "list", "--since", "yesterday")
	c.fails(t, env, "invalid_request_value", "events", "list", "--type", "no.such")
	c.fails(t, env, "totp_code_used_as_recovery_code", "recovery-codes", "recover", "--organization-id", "acme", "--member-id", memberID, "--recovery-code", "123456", "--session-token", token)

	left := c.ok(t, env, "recovery-codes", "get", "--organization-id", "acme", "--member-id", memberID)
	if strings.Join(strs(left, "recovery_codes"), " ") != strings.Join(codes[1:], " ") {
		t.Fatalf("get: %v", left)
	}
	rotated := c.ok(t, env, "recovery-codes", "rotate", "--organization-id", orgID, "--member-id", memberID)
	if newCodes := strs(rotated, "recovery_codes"); len(newCodes) != 10 || newCodes[0] == codes[1] {
		t.Fatalf("rotate: %v", rotated)
	}
	c.fails(t, env, "unable_to_authenticate_recovery_code", "recovery-codes", "recover", "--organization-id", "acme", "--member-id", memberID,
		"--recovery-code", codes[1], "--session-token", token)

	sess := c.ok(t, env, "sessions", "authenticate", "--session-token", token, "--authorization-organization-id", "acme",
		"--authorization-resource-id", "documents", "--authorization-action", "read")
	if str(sess, "session_token") != token || sess["verdict"].(map[string]any)["authorized"] != true {
		t.Fatalf("sessions authenticate: %v", sess)
	}
	c.ok(t, env, "sessions", "revoke", "--session-token", token)
	c.fails(t, env, "session_not_found", "sessions", "authenticate", "--session-token", token)
	c.fails(t, env, "member_not_found", "recovery-codes", "get", "--organization-id", "acme", "--member-id", "member-test-00000000-0000-4000-8000-000000000000")
	c.fails(t, env, "organization_not_found", "organizations", "get", "--organization-id", "nope")

	t.Run("connection flags instead of the environment", func(t *testing.T) {
		c.ok(t, nil, "organizations", "get", "--organization-id", "acme", "--url", c.url, "--project-id", c.projectID, "--secret", c.secret)
	})
	t.Run("wrong secret", func(t *testing.T) {
		c.fails(t, append(env, "SPAREKEY_SECRET="+c.secret+"x"), "unauthorized_credentials", "organizations", "get", "--organization-id", "acme")
	})
	t.Run("unreachable server", func(t *testing.T) {
		closed := httptest.NewServer(http.NotFoundHandler())
		closed.Close()
		r := c.exec(t, nil, "organizations", "get", "--organization-id", "acme", "--url", closed.URL, "--project-id", c.projectID, "--secret", c.secret)
		if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, "sparekey: GET /v1/b2b/organizations/acme: ") {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("usage mistakes", func(t *testing.T) {
		c.usage(t, env, "--member-id required", "recovery-codes", "get", "--organization-id", "acme")
		c.usage(t, env, "--organization-id, --member-id, --recovery-code required", "recovery-codes", "recover")
		c.usage(t, env, "flag provided but not defined", "recovery-codes", "rotate", "--organization-id", "acme", "--member-id", memberID, "--bogus")
		c.usage(t, env, "unexpected argument", "organizations", "get", "acme")
		c.usage(t, env, "not an integer", "recovery-codes", "recover", "--session-duration-minutes", "ten")
		c.usage(t, env, "not a JSON object", "recovery-codes", "recover", "--session-custom-claims", "[1]")
		c.usage(t, append(env, "SPAREKEY_SESSION_DURATION_MINUTES=soon"), "SPAREKEY_SESSION_DURATION_MINUTES", "recovery-codes", "recover")
		c.usage(t, nil, "--project-id (or SPAREKEY_PROJECT_ID) is required", "organizations", "get", "--organization-id", "acme")
		c.usage(t, []string{"SPAREKEY_PROJECT_ID=" + c.projectID}, "--secret (or SPAREKEY_SECRET) is required", "organizations", "get", "--organization-id", "acme")
		c.usage(t, env, "base URL", "organizations", "get", "--organization-id", "acme", "--url", "localhost:8080")
		c.usage(t, env, "--member-id or --email-address required", "members", "get", "--organization-id", "acme")
		c.usage(t, env, "takes no config object", "passwords", "migrate", "--organization-id", "acme", "--email-address", "x@example.com", "--hash", "h", "--hash-type", "bcrypt", "--hash-config", "{}")
		c.usage(t, env, "not a valid pbkdf_2 config object", "passwords", "migrate", "--organization-id", "acme", "--email-address", "x@example.com", "--hash", "h", "--hash-type", "pbkdf_2", "--hash-config", `{"iterations":5}`)
		c.usage(t, env, "--authorization-action required", "sessions", "authenticate", "--session-token", "t", "--authorization-organization-id", "acme", "--authorization-resource-id", "r")
		c.usage(t, env, "unknown command", "recovery-codes", "list")
	})
	t.Run("help", func(t *testing.T) {
		r := c.exec(t, nil, "help", "recovery-codes", "recover")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: sparekey recovery-codes recover") {
			t.Errorf("help: exit %d, stdout %q", r.code, r.stdout)
		}
		r = c.exec(t, nil, "recovery-codes", "get", "-h")
		if r.code != 2 || !strings.HasPrefix(r.stderr, "Usage: sparekey recovery-codes get") {
			t.Errorf("-h: exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

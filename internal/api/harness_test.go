package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sparekey/sparekey/internal/api"
	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/secret"
	"github.com/sparekey/sparekey/internal/totp"
)

// t0 is where every test clock starts: the contract's own example instant.
var t0 = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

// testClock is the service's clock. Tests move it instead of sleeping.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// logBuffer collects the server's log lines; handlers write from many goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testServer is a real sparekey API on the test backend's store (a temp SQLite file, or a
// PostgreSQL schema of its own when SPAREKEY_TEST_API_BACKEND=postgres), reached over HTTP with
// one project's credentials.
type testServer struct {
	URL     string
	Handler http.Handler // the same API, for in-process calls (fuzzing, raw request lines)
	Svc     *auth.Service
	DB      api.TestStore
	Keys    *secret.Keyring
	Clock   *testClock
	Logs    *logBuffer

	ProjectID, Secret string
	seq               *atomic.Int64 // makes names and addresses unique within the server
}

// scope is what a server needs from its owner: a test, or the suite (sharedServer).
type scope = api.StoreOwner

// newTestServer starts a server owned by t. Starting one costs over a second under -race (an RSA
// key and a bcrypt decoy), so the suite shares one (sharedServer) and keeps tests apart with
// fresh organizations, members or projects instead.
func newTestServer(t scope) *testServer {
	t.Helper()
	ctx := context.Background()
	db := api.OpenTestStore(t)
	master := make([]byte, secret.MasterKeySize)
	rand.Read(master)
	keys, err := secret.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{now: t0}
	svc, err := auth.NewService(db, keys, auth.DefaultConfig(), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	p, sec, err := svc.CreateProject(ctx)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	h := api.New(svc, slog.New(slog.NewTextHandler(logs, nil)))
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return &testServer{
		URL: ts.URL, Handler: h, Svc: svc, DB: db, Keys: keys, Clock: clock, Logs: logs,
		ProjectID: p.ID, Secret: sec, seq: new(atomic.Int64),
	}
}

// secondProject is another project on the same server: its ids are simply not found by the first.
func (s *testServer) secondProject(t testing.TB) *testServer {
	t.Helper()
	p, sec, err := s.Svc.CreateProject(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	other := *s
	other.ProjectID, other.Secret = p.ID, sec
	return &other
}

// suite owns the shared server; TestMain runs its cleanups.
type suite struct {
	mu       sync.Mutex
	cleanups []func()
}

func (*suite) Helper()            {}
func (*suite) Fatal(args ...any)  { panic(fmt.Sprint(args...)) }
func (s *suite) Cleanup(f func()) { s.mu.Lock(); s.cleanups = append(s.cleanups, f); s.mu.Unlock() }
func (s *suite) TempDir() string {
	d, err := os.MkdirTemp("", "sparekey-api-test-")
	if err != nil {
		panic(err)
	}
	s.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func (s *suite) close() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
}

var (
	theSuite   suite
	sharedOnce sync.Once
	shared     *testServer
)

func TestMain(m *testing.M) {
	flag.Parse()
	// A backend that cannot be had fails the run once, up front, rather than in every test.
	if _, err := api.StoreBackendOfEnv(); err != nil {
		fmt.Fprintln(os.Stderr, "internal/api tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	theSuite.close()
	os.Exit(code)
}

// sharedServer is one server for every test that only adds state of its own (fresh
// organizations and members) and moves the clock, if at all, forward. Tests read the clock
// instead of assuming t0.
func sharedServer(t testing.TB) *testServer {
	t.Helper()
	sharedOnce.Do(func() { shared = newTestServer(&theSuite) })
	return shared
}

func (s *testServer) next() int64 { return s.seq.Add(1) }

// ---- requests ----

// option adjusts one request.
type option func(*http.Request)

func header(k, v string) option { return func(r *http.Request) { r.Header.Set(k, v) } }

func withoutAuth() option { return func(r *http.Request) { r.Header.Del("Authorization") } }

func basicAuth(id, sec string) option { return func(r *http.Request) { r.SetBasicAuth(id, sec) } }

func memberSession(token string) option { return header("X-Stytch-Member-Session", token) }

func memberSessionJWT(jwt string) option { return header("X-Stytch-Member-SessionJWT", jwt) }

// raw marks a body sent byte for byte rather than JSON-encoded.
type raw []byte

func (s *testServer) request(t testing.TB, method, path string, body any, opts ...option) *http.Request {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case raw:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(s.ProjectID, s.Secret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json") // as every SDK sends it
	}
	for _, o := range opts {
		o(req)
	}
	return req
}

func (s *testServer) do(t testing.TB, method, path string, body any, opts ...option) *response {
	t.Helper()
	res, err := http.DefaultClient.Do(s.request(t, method, path, body, opts...))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return parseResponse(t, method+" "+path, res.StatusCode, res.Header, b)
}

func (s *testServer) get(t testing.TB, path string, opts ...option) *response {
	t.Helper()
	return s.do(t, http.MethodGet, path, nil, opts...)
}

func (s *testServer) post(t testing.TB, path string, body any, opts ...option) *response {
	t.Helper()
	return s.do(t, http.MethodPost, path, body, opts...)
}

func (s *testServer) put(t testing.TB, path string, body any, opts ...option) *response {
	t.Helper()
	return s.do(t, http.MethodPut, path, body, opts...)
}

func (s *testServer) delete(t testing.TB, path string, opts ...option) *response {
	t.Helper()
	return s.do(t, http.MethodDelete, path, map[string]any{}, opts...) // Node sends {}
}

// serve runs one request through the handler in-process, with the request line exactly as given.
func (s *testServer) serve(t testing.TB, method, target string, body []byte, opts ...option) *response {
	t.Helper()
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	req.SetBasicAuth(s.ProjectID, s.Secret)
	for _, o := range opts {
		o(req)
	}
	rec := httptest.NewRecorder()
	s.Handler.ServeHTTP(rec, req)
	return parseResponse(t, method+" "+target, rec.Code, rec.Header(), rec.Body.Bytes())
}

// ---- responses ----

// response is one HTTP answer with its body decoded (numbers kept as written).
type response struct {
	what   string
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any // nil when the body is not a JSON object
}

func parseResponse(t testing.TB, what string, status int, h http.Header, b []byte) *response {
	r := &response{what: what, Status: status, Header: h, Raw: b}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err == nil {
		r.Body, _ = v.(map[string]any)
	}
	return r
}

func (r *response) String() string { return fmt.Sprintf("%s → %d %s", r.what, r.Status, r.Raw) }

var (
	uuid4       = `[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`
	requestIDRe = regexp.MustCompile(`^request-id-test-` + uuid4 + `$`)
)

// idPattern is the §4 format of an id kind, e.g. idPattern("member") matches member-test-<uuid>.
func idPattern(kind string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(kind) + `-test-` + uuid4 + `$`)
}

// ok asserts a success: HTTP 200, JSON, status_code 200, a fresh request_id, no "error" key.
func (r *response) ok(t testing.TB) *response {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("want 200, got %s", r)
	}
	r.envelope(t, 200)
	return r
}

// fails asserts the full §8 error envelope with this status and error_type.
func (r *response) fails(t testing.TB, status int, errorType string) *response {
	t.Helper()
	if r.Status != status || r.Body == nil || r.Body["error_type"] != errorType {
		t.Fatalf("want %d %s, got %s", status, errorType, r)
	}
	r.envelope(t, status)
	for _, k := range []string{"error_type", "error_message", "error_url"} {
		if s, _ := r.Body[k].(string); s == "" {
			t.Errorf("%s: %s is empty", r.what, k)
		}
	}
	if want := "https://stytch.com/docs/api-reference/b2b/api/errors/" + strconv.Itoa(status) + "#" + errorType; r.Body["error_url"] != want {
		t.Errorf("%s: error_url %v, want %s", r.what, r.Body["error_url"], want)
	}
	if len(r.Body) != 5 {
		t.Errorf("%s: error body has keys beyond the envelope: %s", r.what, r.Raw)
	}
	if status == http.StatusTooManyRequests && r.Header.Get("Retry-After") == "" {
		t.Errorf("%s: 429 without Retry-After", r.what)
	}
	return r
}

func (r *response) envelope(t testing.TB, status int) {
	t.Helper()
	if r.Body == nil {
		t.Fatalf("%s: body is not a JSON object: %q", r.what, r.Raw)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", r.what, ct)
	}
	if n, ok := r.Body["status_code"].(json.Number); !ok || n.String() != strconv.Itoa(status) {
		t.Errorf("%s: status_code %v, want %d", r.what, r.Body["status_code"], status)
	}
	if id, _ := r.Body["request_id"].(string); !requestIDRe.MatchString(id) {
		t.Errorf("%s: request_id %q", r.what, id)
	}
	if _, has := r.Body["error"]; has {
		t.Errorf("%s: body has a top-level \"error\" key", r.what)
	}
}

// at returns the value at a dotted path ("member.roles.0.role_id"), or nil.
func (r *response) at(path string) any { return lookup(r.Body, path) }

func lookup(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func (r *response) str(t testing.TB, path string) string {
	t.Helper()
	s, ok := r.at(path).(string)
	if !ok {
		t.Fatalf("%s: %s is %#v, not a string", r.what, path, r.at(path))
	}
	return s
}

func (r *response) num(t testing.TB, path string) int64 {
	t.Helper()
	n, ok := r.at(path).(json.Number)
	if !ok {
		t.Fatalf("%s: %s is %#v, not a number", r.what, path, r.at(path))
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("%s: %s = %s is not an integer", r.what, path, n)
	}
	return i
}

func (r *response) list(t testing.TB, path string) []any {
	t.Helper()
	l, ok := r.at(path).([]any)
	if !ok {
		t.Fatalf("%s: %s is %#v, not an array", r.what, path, r.at(path))
	}
	return l
}

func (r *response) strings(t testing.TB, path string) []string {
	t.Helper()
	var out []string
	for _, v := range r.list(t, path) {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("%s: %s holds %#v", r.what, path, v)
		}
		out = append(out, s)
	}
	return out
}

// want asserts the value at path equals want after a JSON round trip (so 5 matches 5).
func (r *response) want(t testing.TB, path string, want any) *response {
	t.Helper()
	if got, w := canon(r.at(path)), canon(want); got != w {
		t.Errorf("%s: %s = %s, want %s", r.what, path, got, w)
	}
	return r
}

func canon(v any) string {
	b, _ := json.Marshal(v)
	var x any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	dec.Decode(&x)
	b, _ = json.Marshal(x)
	return string(b)
}

// ts formats an instant the way the contract prints timestamps.
func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// ---- builders ----

// org is an organization as created.
type org struct{ ID, Slug, Name string }

// createOrg creates an organization with a unique name; fields add to or override the body.
func (s *testServer) createOrg(t testing.TB, fields map[string]any) org {
	t.Helper()
	n := s.next()
	body := map[string]any{"organization_name": fmt.Sprintf("Org %d", n), "organization_slug": fmt.Sprintf("org-%d", n)}
	for k, v := range fields {
		body[k] = v
	}
	r := s.post(t, "/v1/b2b/organizations", body).ok(t)
	return org{ID: r.str(t, "organization.organization_id"), Slug: r.str(t, "organization.organization_slug"), Name: r.str(t, "organization.organization_name")}
}

// mfaOrg requires MFA of everyone: passwords authenticate hands out intermediate sessions.
func (s *testServer) mfaOrg(t testing.TB) org {
	return s.createOrg(t, map[string]any{"mfa_policy": "REQUIRED_FOR_ALL"})
}

// member is a member with a password and, when enrolled, a TOTP registration and its codes.
type member struct {
	s                  *testServer
	Org                org
	ID, Email          string
	Password           string
	TOTPID, TOTPSecret string
	Codes              []string // unused codes, oldest first; builders that spend one remove it
}

// bcryptHash hashes at the minimum cost: the suite checks behaviour, not key stretching.
func bcryptHash(t testing.TB, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// newMember creates a member with a password through passwords/migrate; fields add to the body.
func (s *testServer) newMember(t testing.TB, o org, fields map[string]any) *member {
	t.Helper()
	n := s.next()
	m := &member{s: s, Org: o, Email: fmt.Sprintf("user%d@example.com", n), Password: fmt.Sprintf("correct horse %d", n)}
	body := map[string]any{"organization_id": o.ID, "email_address": m.Email, "hash_type": "bcrypt", "hash": bcryptHash(t, m.Password)}
	for k, v := range fields {
		body[k] = v
	}
	r := s.post(t, "/v1/b2b/passwords/migrate", body).ok(t)
	m.ID = r.str(t, "member_id")
	m.Email = r.str(t, "member.email_address")
	return m
}

// enrolledMember is a member of o with a password and a TOTP registration.
func (s *testServer) enrolledMember(t testing.TB, o org, fields map[string]any) *member {
	t.Helper()
	m := s.newMember(t, o, fields)
	m.enroll(t, nil)
	return m
}

// enroll gives the member a TOTP registration through totp/migrate (cheaper than create: no
// QR image), importing codes when given.
func (m *member) enroll(t testing.TB, codes []string) *response {
	t.Helper()
	sec, err := totp.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"organization_id": m.Org.ID, "member_id": m.ID, "secret": sec}
	if codes != nil {
		body["recovery_codes"] = codes
	}
	r := m.s.post(t, "/v1/b2b/totp/migrate", body).ok(t)
	m.TOTPSecret, m.TOTPID, m.Codes = sec, r.str(t, "totp_registration_id"), r.strings(t, "recovery_codes")
	return r
}

// totpCode is the member's TOTP code at the server clock's step plus offset.
func (m *member) totpCode(t testing.TB, offset int64) string {
	t.Helper()
	c, err := totp.Code(m.TOTPSecret, totp.Step(m.s.Clock.Now())+offset)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// passwordAuth calls passwords/authenticate with the member's password; extra adds to the body.
func (m *member) passwordAuth(t testing.TB, extra map[string]any) *response {
	t.Helper()
	body := map[string]any{"organization_id": m.Org.ID, "email_address": m.Email, "password": m.Password}
	for k, v := range extra {
		body[k] = v
	}
	return m.s.post(t, "/v1/b2b/passwords/authenticate", body)
}

// ist is a fresh intermediate session token: the member's organization must require MFA.
func (m *member) ist(t testing.TB) string {
	t.Helper()
	r := m.passwordAuth(t, nil).ok(t)
	ist := r.str(t, "intermediate_session_token")
	if ist == "" {
		t.Fatalf("no intermediate session: %s", r)
	}
	return ist
}

// recoverBody is a recover request for the member; extra adds to or overrides it.
func (m *member) recoverBody(code string, extra map[string]any) map[string]any {
	body := map[string]any{"organization_id": m.Org.ID, "member_id": m.ID, "recovery_code": code}
	for k, v := range extra {
		body[k] = v
	}
	return body
}

// totpBody is a TOTP authenticate request for the member.
func (m *member) totpBody(code string, extra map[string]any) map[string]any {
	body := map[string]any{"organization_id": m.Org.ID, "member_id": m.ID, "code": code}
	for k, v := range extra {
		body[k] = v
	}
	return body
}

// popCode returns the member's newest unused code and forgets it.
func (m *member) popCode(t testing.TB) string {
	t.Helper()
	if len(m.Codes) == 0 {
		t.Fatal("member has no codes left")
	}
	c := m.Codes[len(m.Codes)-1]
	m.Codes = m.Codes[:len(m.Codes)-1]
	return c
}

// session is a session of the member, made the way a real login makes it: the password, then,
// when MFA is required, a recovery code.
type session struct{ Token, JWT, ID string }

func (m *member) session(t testing.TB, extra map[string]any) session {
	t.Helper()
	r := m.passwordAuth(t, extra).ok(t)
	if r.at("member_session") == nil {
		e := map[string]any{"intermediate_session_token": r.str(t, "intermediate_session_token")}
		for k, v := range extra {
			e[k] = v
		}
		r = m.s.post(t, "/v1/b2b/recovery_codes/recover", m.recoverBody(m.popCode(t), e)).ok(t)
	}
	return session{Token: r.str(t, "session_token"), JWT: r.str(t, "session_jwt"), ID: r.str(t, "member_session.member_session_id")}
}

// path is the member's PUT and DELETE path.
func (m *member) path() string {
	return "/v1/b2b/organizations/" + m.Org.ID + "/members/" + m.ID
}

// codesPath is the member's GET recovery codes path.
func (m *member) codesPath() string { return "/v1/b2b/recovery_codes/" + m.Org.ID + "/" + m.ID }

// state reads the member as GET shows it.
func (m *member) state(t testing.TB) *response {
	t.Helper()
	return m.s.get(t, "/v1/b2b/organizations/"+m.Org.ID+"/member?member_id="+m.ID).ok(t)
}

// unusedCodes is what GET recovery codes lists.
func (m *member) unusedCodes(t testing.TB) []string {
	t.Helper()
	return m.s.get(t, m.codesPath()).ok(t).strings(t, "recovery_codes")
}

package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/sparekey/sparekey/internal/api"
	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/secret"
	"github.com/sparekey/sparekey/internal/store/postgres"
	"github.com/sparekey/sparekey/internal/store/testdb"
)

// The operations side of the API: /healthz, /readyz, /metrics, /openapi.json and the request
// log. The helpers here carry an ops prefix; the Stytch endpoints' tests have their own harness.

// opsStore is a store the way serve holds one.
type opsStore = api.TestStore

// opsEnv is a real sparekey API with metrics and the database readiness checks, on a store of
// the test's choosing, reached over HTTP.
type opsEnv struct {
	URL               string
	Store             opsStore
	Master            []byte
	Logs              *opsLogs
	ProjectID, Secret string
	http              *http.Client
}

// opsLogs collects the JSON log lines of a server.
type opsLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *opsLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *opsLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lines returns the decoded log lines with msg, in order.
func (l *opsLogs) lines(t testing.TB, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// opsServe starts the API on store with a fresh master key and project. cfg tunes the domain.
func opsServe(t testing.TB, store opsStore, cfg auth.Config) *opsEnv {
	t.Helper()
	master := make([]byte, secret.MasterKeySize)
	rand.Read(master)
	env := &opsEnv{Store: store, Master: master}
	p, sec := opsStart(t, env, cfg)
	env.ProjectID, env.Secret = p, sec
	return env
}

// opsStart serves the API for env's store and master key, creating a project when env has none.
func opsStart(t testing.TB, env *opsEnv, cfg auth.Config) (projectID, projectSecret string) {
	t.Helper()
	keys, err := secret.NewKeyring(env.Master)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := auth.NewService(env.Store, keys, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	projectID, projectSecret = env.ProjectID, env.Secret
	if projectID == "" {
		p, sec, err := svc.CreateProject(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		projectID, projectSecret = p.ID, sec
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(api.NewPoolCollector(env.Store))
	env.Logs = &opsLogs{}
	log := slog.New(slog.NewJSONHandler(env.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := api.New(svc, log, api.WithMetrics(api.NewMetrics(reg)), api.WithMetricsEndpoint(), api.WithDatabase(env.Store))
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	env.URL = ts.URL
	env.http = ts.Client()
	return projectID, projectSecret
}

// opsReply is one HTTP answer with its body decoded when it is JSON.
type opsReply struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

func (e *opsEnv) do(t testing.TB, method, path string, body any, authenticated bool) opsReply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if authenticated {
		req.SetBasicAuth(e.ProjectID, e.Secret)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := opsReply{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %q", method, path, raw)
		}
	}
	return r
}

// call is an authenticated API call that must answer 200.
func (e *opsEnv) call(t testing.TB, method, path string, body any) opsReply {
	t.Helper()
	r := e.do(t, method, path, body, true)
	if r.Status != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d, want 200: %s", method, path, r.Status, r.Raw)
	}
	return r
}

func (r opsReply) str(t testing.TB, keys ...string) string {
	t.Helper()
	var v any = r.Body
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%s is %#v, want a string, in %s", strings.Join(keys, "."), v, r.Raw)
	}
	return s
}

func (r opsReply) strs(t testing.TB, key string) []string {
	t.Helper()
	arr, ok := r.Body[key].([]any)
	if !ok {
		t.Fatalf("%s is %#v, want an array, in %s", key, r.Body[key], r.Raw)
	}
	out := make([]string, len(arr))
	for i, v := range arr {
		out[i], _ = v.(string)
	}
	return out
}

// opsMember is a member of a REQUIRED_FOR_ALL organization with a password and TOTP codes.
type opsMember struct {
	OrgID, ID, Email, Password string
	Codes                      []string
}

var opsPasswordHash = sync.OnceValue(func() string {
	h, err := bcrypt.GenerateFromPassword([]byte("correct horse battery staple"), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
})

// opsEnroll creates an organization and a member with a password and a TOTP registration.
func (e *opsEnv) opsEnroll(t testing.TB, name string) opsMember {
	t.Helper()
	org := e.call(t, "POST", "/v1/b2b/organizations", map[string]any{"organization_name": name, "mfa_policy": "REQUIRED_FOR_ALL"}).str(t, "organization", "organization_id")
	m := opsMember{OrgID: org, Email: strings.ToLower(name) + "@example.com", Password: "correct horse battery staple"}
	m.ID = e.call(t, "POST", "/v1/b2b/organizations/"+org+"/members", map[string]any{"email_address": m.Email}).str(t, "member_id")
	e.call(t, "POST", "/v1/b2b/passwords/migrate", map[string]any{"organization_id": org, "email_address": m.Email, "hash": opsPasswordHash(), "hash_type": "bcrypt"})
	m.Codes = e.call(t, "POST", "/v1/b2b/totp", map[string]any{"organization_id": org, "member_id": m.ID}).strs(t, "recovery_codes")
	return m
}

// opsIST logs the member in with the password and returns the intermediate session token.
func (e *opsEnv) opsIST(t testing.TB, m opsMember) string {
	t.Helper()
	return e.call(t, "POST", "/v1/b2b/passwords/authenticate", map[string]any{"organization_id": m.OrgID, "email_address": m.Email, "password": m.Password}).str(t, "intermediate_session_token")
}

func opsRecoverBody(m opsMember, code, ist string) map[string]any {
	return map[string]any{"organization_id": m.OrgID, "member_id": m.ID, "recovery_code": code, "intermediate_session_token": ist}
}

// opsScrape reads GET /metrics into series → value, the series written as the exposition
// format writes it: name{label="value",...} with the labels in alphabetical order.
func (e *opsEnv) opsScrape(t testing.TB) map[string]float64 {
	t.Helper()
	r := e.do(t, "GET", "/metrics", nil, false)
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: HTTP %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(r.Raw), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestOpsEndpoints: the operations routes need no credentials, answer JSON, and a wrong method
// gets the JSON 405 like every route.
func TestOpsEndpoints(t *testing.T) {
	e := opsServe(t, api.OpenTestStore(t), auth.DefaultConfig())
	for _, c := range []struct {
		method, path string
		status       int
		body         string // a regexp the body must match
	}{
		{"GET", "/healthz", 200, `^\{"status":"ok","request_id":"request-id-test-[0-9a-f-]{36}"\}\n$`},
		{"GET", "/readyz", 200, `^\{"status":"ok","checks":\{"database":"ok","keys":"ok","schema":"ok"\},"request_id":"request-id-test-[0-9a-f-]{36}"\}\n$`},
		{"GET", "/openapi.json", 200, `^\{\n  "openapi": "3\.1\.0",`},
		{"POST", "/healthz", 405, `"error_type":"method_not_allowed"`},
		{"DELETE", "/readyz", 405, `"error_type":"method_not_allowed"`},
		{"GET", "/healthz/x", 404, `"error_type":"route_not_found"`},
	} {
		r := e.do(t, c.method, c.path, nil, false)
		if r.Status != c.status || !regexp.MustCompile(c.body).Match(r.Raw) {
			t.Errorf("%s %s: HTTP %d %q, want %d matching %s", c.method, c.path, r.Status, r.Raw, c.status, c.body)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q, want application/json", c.method, c.path, ct)
		}
	}
}

// TestReadinessFlips: /readyz answers 503 naming the failed check while the database is gone,
// its schema is not this binary's, or the master key cannot open its data, and 200 again once
// the cause is undone. /healthz stays 200 throughout: the process is fine.
func TestReadinessFlips(t *testing.T) {
	if api.StoreBackend(t) != api.BackendSQLite {
		t.Skip("SQLite only: it moves the database file away and rewrites its PRAGMA user_version; TestReadinessFlipsPostgres flips readiness on PostgreSQL")
	}
	db := api.OpenTestSQLite(t)
	e := opsServe(t, db, auth.DefaultConfig())
	e.opsEnroll(t, "Ready") // the key check has a project, organization and codes to open
	e.opsWantReady(t, "at start")

	t.Run("database file gone", func(t *testing.T) {
		// The server's pooled connections keep the file open, so a query would still succeed;
		// readiness must look at the file the configuration names. Nothing else talks to the
		// server while the file is away: a pooled connection opened now would create an empty
		// file in its place.
		away := db.Path() + ".away"
		if err := os.Rename(db.Path(), away); err != nil {
			t.Fatal(err)
		}
		r := e.do(t, "GET", "/readyz", nil, false)
		restore := os.Rename(away, db.Path())
		e.opsWantUnready(t, r, "database")
		if restore != nil {
			t.Fatal(restore)
		}
		e.opsWantReady(t, "with the file back")
	})

	t.Run("schema of another version", func(t *testing.T) {
		setVersion := func(v int) {
			c, err := sql.Open("sqlite", "file:"+db.Path())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, v)); err != nil {
				t.Fatal(err)
			}
		}
		current, _, err := db.SchemaVersion(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		setVersion(current + 1) // as a newer sparekey would leave it
		r := e.do(t, "GET", "/readyz", nil, false)
		setVersion(current)
		e.opsWantUnready(t, r, "schema")
		e.opsWantReady(t, "with the schema version back")
	})

	t.Run("wrong master key", func(t *testing.T) {
		wrong := &opsEnv{Store: db, Master: make([]byte, secret.MasterKeySize), ProjectID: e.ProjectID, Secret: e.Secret}
		rand.Read(wrong.Master)
		opsStart(t, wrong, auth.DefaultConfig())
		wrong.opsWantUnready(t, wrong.do(t, "GET", "/readyz", nil, false), "keys")
	})
}

// TestReadinessFlipsPostgres: the PostgreSQL store behind a TCP proxy that the test cuts and
// restores, the way a network partition or a database restart looks to a replica; then a schema
// of another version and a wrong master key, as TestReadinessFlips has them on SQLite.
func TestReadinessFlipsPostgres(t *testing.T) {
	url := os.Getenv("SPAREKEY_TEST_POSTGRES_URL")
	if url == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SPAREKEY_TEST_POSTGRES_URL is not set; CI must test the PostgreSQL store")
		}
		t.Skip("SPAREKEY_TEST_POSTGRES_URL is not set")
	}
	cfg := opsPostgresSchema(t, url)
	proxy := opsStartProxy(t, net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))))
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = "127.0.0.1", proxy.port()
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	db, err := postgres.OpenConfig(context.Background(), cfg, postgres.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := opsServe(t, db, auth.DefaultConfig())
	e.opsEnroll(t, "ReadyPG")
	e.opsWantReady(t, "at start")

	proxy.cut(t)
	e.opsWantUnready(t, e.do(t, "GET", "/readyz", nil, false), "database")
	if r := e.do(t, "GET", "/healthz", nil, false); r.Status != http.StatusOK {
		t.Errorf("GET /healthz while the database is away: HTTP %d, want 200", r.Status)
	}
	proxy.restore(t)
	e.opsWantReady(t, "with the database back")

	// The other two checks, as TestReadinessFlips makes them fail on SQLite: this is the
	// readiness test of the suite's PostgreSQL run.
	t.Run("schema of another version", func(t *testing.T) {
		ctx := context.Background()
		conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig.Copy())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		current, _, err := db.SchemaVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// As a newer sparekey would leave it.
		if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, current+1); err != nil {
			t.Fatal(err)
		}
		r := e.do(t, "GET", "/readyz", nil, false)
		if _, err := conn.Exec(ctx, `DELETE FROM schema_migrations WHERE version = $1`, current+1); err != nil {
			t.Fatal(err)
		}
		e.opsWantUnready(t, r, "schema")
		e.opsWantReady(t, "with the schema version back")
	})

	t.Run("wrong master key", func(t *testing.T) {
		wrong := &opsEnv{Store: db, Master: make([]byte, secret.MasterKeySize), ProjectID: e.ProjectID, Secret: e.Secret}
		rand.Read(wrong.Master)
		opsStart(t, wrong, auth.DefaultConfig())
		wrong.opsWantUnready(t, wrong.do(t, "GET", "/readyz", nil, false), "keys")
	})
}

func (e *opsEnv) opsWantReady(t testing.TB, when string) {
	t.Helper()
	r := e.do(t, "GET", "/readyz", nil, false)
	if r.Status != http.StatusOK || r.Body["status"] != "ok" {
		t.Fatalf("GET /readyz %s: HTTP %d %s, want 200 ok", when, r.Status, r.Raw)
	}
}

// opsWantUnready checks a 503 whose checks name failed as the failed check, skip the later
// ones, and whose cause is in the log under the body's request id.
func (e *opsEnv) opsWantUnready(t testing.TB, r opsReply, failed string) {
	t.Helper()
	order := []string{"database", "schema", "keys"}
	want := map[string]any{}
	state := "ok"
	for _, c := range order {
		if c == failed {
			want[c], state = "failed", "skipped"
			continue
		}
		want[c] = state
	}
	checks, _ := r.Body["checks"].(map[string]any)
	if r.Status != http.StatusServiceUnavailable || r.Body["status"] != "unavailable" || fmt.Sprint(checks) != fmt.Sprint(want) {
		t.Fatalf("GET /readyz: HTTP %d %s, want 503 unavailable with checks %v", r.Status, r.Raw, want)
	}
	id, _ := r.Body["request_id"].(string)
	for _, line := range e.Logs.lines(t, "not ready") {
		if line["request_id"] == id && line["check"] == failed && line["err"] != "" {
			return
		}
	}
	t.Errorf("no \"not ready\" log line for request %s and check %s:\n%s", id, failed, e.Logs.String())
}

// opsPostgresSchema creates a schema of its own, dropped at the end, and returns a pool
// configuration whose connections use it.
func opsPostgresSchema(t testing.TB, url string) *pgxpool.Config {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testdb.PostgresSchema(t, url, "sk_ops_"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// opsProxy forwards TCP connections to a target until cut, which closes the listener and every
// connection; restore listens again on the same port.
type opsProxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

func opsStartProxy(t testing.TB, target string) *opsProxy {
	t.Helper()
	p := &opsProxy{target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(func() { p.cut(t) })
	return p
}

func (p *opsProxy) port() uint16 { return uint16(p.ln.Addr().(*net.TCPAddr).Port) }

func (p *opsProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *opsProxy) cut(t testing.TB) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *opsProxy) restore(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.serve(ln)
}

// TestMetricsCount: each answered request moves the metrics it should, by route pattern,
// method and status, and the recovery-code counters follow what the API did.
func TestMetricsCount(t *testing.T) {
	cfg := auth.DefaultConfig()
	cfg.Lock.Threshold = 2
	e := opsServe(t, api.OpenTestStore(t), cfg)
	before := e.opsScrape(t)
	m := e.opsEnroll(t, "Metrics") // org, member, password migrate, TOTP create: 10 codes issued

	const recoverSeries = `{method="POST",route="POST /v1/b2b/recovery_codes/recover",status="%d"}`
	e.call(t, "POST", "/v1/b2b/recovery_codes/recover", opsRecoverBody(m, m.Codes[0], e.opsIST(t, m)))
	e.call(t, "POST", "/v1/b2b/recovery_codes/rotate", map[string]any{"organization_id": m.OrgID, "member_id": m.ID})
	e.call(t, "GET", "/v1/b2b/recovery_codes/"+m.OrgID+"/"+m.ID, nil) // shows codes, issues none
	imported := e.opsEnroll(t, "Imported")
	e.call(t, "DELETE", "/v1/b2b/organizations/"+imported.OrgID+"/members/"+imported.ID+"/totp", nil)
	e.call(t, "POST", "/v1/b2b/totp/migrate", map[string]any{"organization_id": imported.OrgID, "member_id": imported.ID,
		"secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "recovery_codes": []string{"0000-0000-0001", "0000-0000-0002", "0000-0000-0003"}})
	ist := e.opsIST(t, m)
	wrong := e.do(t, "POST", "/v1/b2b/recovery_codes/recover", opsRecoverBody(m, "zzzz-zzzz-zzzz", ist), true)   // 401
	locking := e.do(t, "POST", "/v1/b2b/recovery_codes/recover", opsRecoverBody(m, "zzzz-zzzz-zzzy", ist), true) // 429: the lock is set
	locked := e.do(t, "POST", "/v1/b2b/recovery_codes/recover", opsRecoverBody(m, m.Codes[1], ist), true)        // 429: refused while locked
	for _, c := range []struct {
		r      opsReply
		status int
	}{{wrong, 401}, {locking, 429}, {locked, 429}} {
		if c.r.Status != c.status {
			t.Fatalf("recover: HTTP %d %s, want %d", c.r.Status, c.r.Raw, c.status)
		}
	}
	e.do(t, "GET", "/v1/b2b/organizations/nope", nil, false)    // 401, route matched
	e.do(t, "GET", "/nowhere", nil, false)                      // 404, no route
	e.do(t, "BREW", "/v1/b2b/recovery_codes/rotate", nil, true) // 405, an unknown method

	after := e.opsScrape(t)
	for _, c := range []struct {
		series string
		delta  float64
	}{
		{"sparekey_http_requests_total" + fmt.Sprintf(recoverSeries, 200), 1},
		{"sparekey_http_requests_total" + fmt.Sprintf(recoverSeries, 401), 1},
		{"sparekey_http_requests_total" + fmt.Sprintf(recoverSeries, 429), 2},
		{"sparekey_http_request_duration_seconds_count" + fmt.Sprintf(recoverSeries, 429), 2},
		{`sparekey_http_requests_total{method="POST",route="POST /v1/b2b/totp",status="200"}`, 2},
		{`sparekey_http_requests_total{method="POST",route="POST /v1/b2b/passwords/authenticate",status="200"}`, 2},
		{`sparekey_http_requests_total{method="GET",route="GET /v1/b2b/organizations/{organization_id}",status="401"}`, 1},
		{`sparekey_http_requests_total{method="GET",route="none",status="404"}`, 1},
		{`sparekey_http_requests_total{method="other",route="none",status="405"}`, 1},
		{`sparekey_http_requests_total{method="GET",route="GET /metrics",status="200"}`, 1}, // the first scrape
		{`sparekey_recovery_code_recovers_total{outcome="success"}`, 1},
		{`sparekey_recovery_code_recovers_total{outcome="unable_to_authenticate_recovery_code"}`, 1},
		{`sparekey_recovery_code_recovers_total{outcome="user_lock_limit_reached"}`, 2},
		{`sparekey_member_lock_answers_total{route="POST /v1/b2b/recovery_codes/recover"}`, 2},
		{`sparekey_recovery_codes_used_total`, 1},
		{`sparekey_recovery_codes_issued_total{route="POST /v1/b2b/totp"}`, 20},
		{`sparekey_recovery_codes_issued_total{route="POST /v1/b2b/recovery_codes/rotate"}`, 10},
		{`sparekey_recovery_codes_issued_total{route="POST /v1/b2b/totp/migrate"}`, 3},
	} {
		if got := after[c.series] - before[c.series]; got != c.delta {
			t.Errorf("%s moved by %v, want %v", c.series, got, c.delta)
		}
	}
	pools := map[string][]string{api.BackendSQLite: {"sqlite_write", "sqlite_read"}, api.BackendPostgres: {"postgres"}}[api.StoreBackend(t)]
	for _, pool := range pools {
		if n, ok := after[`sparekey_db_pool_max_open_connections{pool="`+pool+`"}`]; !ok || n < 1 {
			t.Errorf("no pool size for %s: %v", pool, n)
		}
	}
	for series := range after {
		if strings.Contains(series, "organization-test-") || strings.Contains(series, "member-test-") || strings.Contains(series, "/nowhere") {
			t.Errorf("a metric label holds an id or a raw path: %s", series)
		}
	}
}

// TestRequestLogLine: one line per request, carrying the request id the body returned, the route
// pattern, status, duration and the canonical project and organization ids (also when the
// request named the organization by slug); never a code, token, secret or password. Probes log
// at debug.
func TestRequestLogLine(t *testing.T) {
	e := opsServe(t, api.OpenTestStore(t), auth.DefaultConfig())
	m := e.opsEnroll(t, "Logged")
	ist := e.opsIST(t, m)
	got := e.call(t, "POST", "/v1/b2b/recovery_codes/recover", opsRecoverBody(m, m.Codes[0], ist))
	slug := e.call(t, "GET", "/v1/b2b/organizations/"+m.OrgID, nil).str(t, "organization", "organization_slug")
	bySlug := e.call(t, "GET", "/v1/b2b/recovery_codes/"+slug+"/"+m.ID, nil)
	refused := e.do(t, "POST", "/v1/b2b/recovery_codes/recover", opsRecoverBody(m, m.Codes[0], e.opsIST(t, m)), true)
	probe := e.do(t, "GET", "/healthz", nil, false)

	lines := map[string]map[string]any{}
	for _, l := range e.Logs.lines(t, "request") {
		id, _ := l["request_id"].(string)
		if _, dup := lines[id]; dup {
			t.Errorf("two log lines for request %s", id)
		}
		lines[id] = l
	}
	for _, c := range []struct {
		r         opsReply
		level     string
		route     string
		status    float64
		project   string
		org       string
		errorType string
	}{
		{got, "INFO", "POST /v1/b2b/recovery_codes/recover", 200, e.ProjectID, m.OrgID, ""},
		{bySlug, "INFO", "GET /v1/b2b/recovery_codes/{organization_id}/{member_id}", 200, e.ProjectID, m.OrgID, ""},
		{refused, "INFO", "POST /v1/b2b/recovery_codes/recover", 401, e.ProjectID, "", "unable_to_authenticate_recovery_code"},
		{probe, "DEBUG", "GET /healthz", 200, "", "", ""},
	} {
		id, _ := c.r.Body["request_id"].(string)
		l, ok := lines[id]
		if !ok {
			t.Errorf("no log line for request %s (%s)", id, c.route)
			continue
		}
		want := map[string]any{"level": c.level, "route": c.route, "status": c.status, "project_id": c.project, "organization_id": c.org, "error_type": c.errorType}
		for k, v := range want {
			if l[k] != v {
				t.Errorf("log line of %s: %s = %v, want %v", c.route, k, l[k], v)
			}
		}
		if d, ok := l["duration_ms"].(float64); !ok || d < 0 {
			t.Errorf("log line of %s: duration_ms = %v", c.route, l["duration_ms"])
		}
	}
	logs := e.Logs.String()
	for _, s := range append(slices.Clone(m.Codes), strings.ReplaceAll(m.Codes[0], "-", ""), ist, got.str(t, "session_token"), got.str(t, "session_jwt"), e.Secret, m.Password) {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds a secret value %.10q…", s)
		}
	}
}

// TestOpenAPIDocumentsEveryRoute holds the embedded document to the real mux: every registered
// pattern is documented and every documented operation is registered, every path parameter is
// declared, every $ref resolves, and every operation says what 200 returns.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	e := opsServe(t, api.OpenTestStore(t), auth.DefaultConfig())
	r := e.do(t, "GET", "/openapi.json", nil, false)
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components json.RawMessage                       `json:"components"`
	}
	if err := json.Unmarshal(r.Raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	var documented []string
	param := regexp.MustCompile(`\{([a-z_]+)\}`)
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			pattern := strings.ToUpper(method) + " " + path
			documented = append(documented, pattern)
			var op struct {
				Parameters []struct {
					Ref  string `json:"$ref"`
					Name string `json:"name"`
					In   string `json:"in"`
				} `json:"parameters"`
				Responses map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s: %v", pattern, err)
			}
			if _, ok := op.Responses["200"]; !ok {
				t.Errorf("%s documents no 200 response", pattern)
			}
			declared := map[string]bool{}
			for _, p := range op.Parameters {
				if p.In == "path" {
					declared[p.Name] = true
				}
			}
			var inPath []string
			for _, m := range param.FindAllStringSubmatch(path, -1) {
				inPath = append(inPath, m[1])
				if !declared[m[1]] {
					t.Errorf("%s does not declare its path parameter %s", pattern, m[1])
				}
			}
			if len(declared) != len(inPath) {
				t.Errorf("%s declares path parameters %v, its path has %v", pattern, declared, inPath)
			}
		}
	}
	sort.Strings(documented)
	h := api.New(nil, slog.New(slog.DiscardHandler), api.WithMetrics(api.NewMetrics(prometheus.NewRegistry())), api.WithMetricsEndpoint())
	if served := h.Patterns(); !slices.Equal(documented, served) {
		t.Errorf("the document and the mux disagree\ndocumented only: %v\nserved only:     %v", opsMinus(documented, served), opsMinus(served, documented))
	}

	var whole any
	if err := json.Unmarshal(r.Raw, &whole); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && opsResolve(whole, ref) == nil {
				t.Errorf("$ref %s resolves to nothing", ref)
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(whole)
}

func opsMinus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// opsResolve follows a local JSON pointer (#/components/schemas/Member).
func opsResolve(doc any, ref string) any {
	if !strings.HasPrefix(ref, "#/") {
		return nil
	}
	v := doc
	for _, k := range strings.Split(ref[2:], "/") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// TestOpenAPIRecoveryCodeSchemas holds the document's response schemas of the recovery-code
// endpoints, and its Organization, Member and MemberSession components, to what the handlers
// send: the same field names, every one of them required, and the JSON type of each field.
func TestOpenAPIRecoveryCodeSchemas(t *testing.T) {
	e := opsServe(t, api.OpenTestStore(t), auth.DefaultConfig())
	var doc map[string]any
	if err := json.Unmarshal(e.do(t, "GET", "/openapi.json", nil, false).Raw, &doc); err != nil {
		t.Fatal(err)
	}
	m := e.opsEnroll(t, "Schemas")
	get := e.call(t, "GET", "/v1/b2b/recovery_codes/"+m.OrgID+"/"+m.ID, nil)
	rotate := e.call(t, "POST", "/v1/b2b/recovery_codes/rotate", map[string]any{"organization_id": m.OrgID, "member_id": m.ID})
	recovered := e.call(t, "POST", "/v1/b2b/recovery_codes/recover", opsRecoverBody(m, rotate.strs(t, "recovery_codes")[0], e.opsIST(t, m)))
	bad := e.do(t, "POST", "/v1/b2b/recovery_codes/recover", map[string]any{}, true)

	for _, c := range []struct {
		name   string
		schema string
		body   any
	}{
		{"GET recovery codes", "RecoveryCodesResponse", get.Body},
		{"rotate", "RecoveryCodesResponse", rotate.Body},
		{"recover", "RecoverResponse", recovered.Body},
		{"error envelope", "Error", bad.Body},
		{"organization", "Organization", recovered.Body["organization"]},
		{"member", "Member", recovered.Body["member"]},
		{"member session", "MemberSession", recovered.Body["member_session"]},
	} {
		opsMatchSchema(t, doc, c.name, opsResolve(doc, "#/components/schemas/"+c.schema), c.body)
	}
}

// opsMatchSchema compares an object's keys with a schema's properties, all of them required,
// and each value's JSON type with the property's type, following $refs into nested objects.
func opsMatchSchema(t *testing.T, doc map[string]any, what string, schema, value any) {
	t.Helper()
	s, _ := schema.(map[string]any)
	if ref, ok := s["$ref"].(string); ok {
		s, _ = opsResolve(doc, ref).(map[string]any)
	}
	if one, ok := s["oneOf"].([]any); ok && value != nil { // a nullable object: the non-null branch
		opsMatchSchema(t, doc, what, one[0], value)
		return
	}
	jsonType := func(v any) string {
		switch v := v.(type) {
		case nil:
			return "null"
		case string:
			return "string"
		case bool:
			return "boolean"
		case float64:
			if v == float64(int64(v)) {
				return "integer"
			}
			return "number"
		case []any:
			return "array"
		case map[string]any:
			return "object"
		}
		return "?"
	}
	types := map[string]bool{}
	switch ty := s["type"].(type) {
	case string:
		types[ty] = true
	case []any:
		for _, x := range ty {
			types[x.(string)] = true
		}
	}
	if got := jsonType(value); len(types) > 0 && !types[got] {
		t.Errorf("%s is %s, the document says %v", what, got, s["type"])
		return
	}
	obj, ok := value.(map[string]any)
	props, hasProps := s["properties"].(map[string]any)
	if !ok || !hasProps {
		if arr, isArr := value.([]any); isArr && len(arr) > 0 && s["items"] != nil {
			opsMatchSchema(t, doc, what+"[0]", s["items"], arr[0])
		}
		return
	}
	required := map[string]bool{}
	for _, r := range s["required"].([]any) {
		required[r.(string)] = true
	}
	for k := range obj {
		if props[k] == nil {
			t.Errorf("%s.%s is sent but not in the document", what, k)
		}
	}
	for k, p := range props {
		v, sent := obj[k]
		if !sent {
			if required[k] {
				t.Errorf("%s.%s is required by the document but not sent", what, k)
			}
			continue
		}
		if !required[k] {
			t.Errorf("%s.%s is always sent but the document says optional", what, k)
		}
		opsMatchSchema(t, doc, what+"."+k, p, v)
	}
}

package client_test

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/sparekey/sparekey/client"
	"github.com/sparekey/sparekey/internal/api"
	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/secret"
	"github.com/sparekey/sparekey/internal/store/sqlite"
)

// sparekey is a real server on a temporary SQLite file, served over loopback HTTP.
type sparekey struct {
	URL       string
	ProjectID string
	Secret    string
	svc       *auth.Service
	close     func()
}

// startSparekey starts a server whose domain reads the time from clock (nil: the wall clock).
// It returns errors rather than taking a testing.TB so the godoc examples can use it too.
func startSparekey(dir string, clock func() time.Time) (*sparekey, error) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "sparekey.db"))
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	key := make([]byte, secret.MasterKeySize)
	rand.Read(key)
	keys, err := secret.NewKeyring(key)
	if err != nil {
		db.Close()
		return nil, err
	}
	svc, err := auth.NewService(db, keys, auth.DefaultConfig(), clock)
	if err != nil {
		db.Close()
		return nil, err
	}
	project, sec, err := svc.CreateProject(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	ts := httptest.NewServer(api.New(svc, slog.New(slog.DiscardHandler)))
	return &sparekey{
		URL: ts.URL, ProjectID: project.ID, Secret: sec, svc: svc,
		close: func() { ts.Close(); db.Close() },
	}, nil
}

func newSparekey(t *testing.T, clock func() time.Time) *sparekey {
	t.Helper()
	sk, err := startSparekey(t.TempDir(), clock)
	if err != nil {
		t.Fatalf("start sparekey: %v", err)
	}
	t.Cleanup(sk.close)
	return sk
}

// exampleServers is the one server the godoc examples share: each example makes its own
// organization, and starting a server (an RSA key, a bcrypt decoy) is the slow part of a test.
var exampleServers struct {
	once sync.Once
	sk   *sparekey
	dir  string
}

// exampleServer returns the examples' server; TestMain stops it.
func exampleServer() (sk *sparekey, done func()) {
	exampleServers.once.Do(func() {
		dir, err := os.MkdirTemp("", "sparekey-example-")
		if err != nil {
			panic(err)
		}
		exampleServers.dir = dir
		if exampleServers.sk, err = startSparekey(dir, nil); err != nil {
			panic(err)
		}
	})
	return exampleServers.sk, func() {}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if exampleServers.sk != nil {
		exampleServers.sk.close()
	}
	if exampleServers.dir != "" {
		os.RemoveAll(exampleServers.dir)
	}
	os.Exit(code)
}

// testClock is moved by tests instead of sleeping; the server and the client share one.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)}
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

// exchange is one request and response as they crossed the wire.
type exchange struct {
	Method, Path, RawQuery string
	Header                 http.Header
	RequestBody            []byte
	Status                 int
	ResponseBody           []byte
}

// recorder is an http.RoundTripper that keeps a copy of every exchange, so tests can compare a
// typed response with the exact body the server sent and a request with the exact body sent.
type recorder struct {
	mu        sync.Mutex
	exchanges []exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body.Close()
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	r.exchanges = append(r.exchanges, exchange{
		Method: req.Method, Path: req.URL.EscapedPath(), RawQuery: req.URL.RawQuery, Header: req.Header.Clone(),
		RequestBody: reqBody, Status: resp.StatusCode, ResponseBody: body,
	})
	r.mu.Unlock()
	return resp, nil
}

func (r *recorder) last(t *testing.T) exchange {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.exchanges) == 0 {
		t.Fatal("no request was recorded")
	}
	return r.exchanges[len(r.exchanges)-1]
}

// newClient returns a client of sk that records its exchanges and reads time from clock.
func newClient(t *testing.T, sk *sparekey, clock *testClock, opts ...client.Option) (*client.Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	opts = append([]client.Option{client.WithHTTPClient(&http.Client{Transport: rec})}, opts...)
	if clock != nil {
		opts = append(opts, client.WithClock(clock.Now))
	}
	c, err := client.New(sk.URL, sk.ProjectID, sk.Secret, opts...)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	return c, rec
}

// sameJSON fails unless got, encoded as JSON, equals the body the server sent: every field of
// the answer is carried by the typed response, with the same value, and nothing is invented.
func sameJSON(t *testing.T, rec *recorder, got any) {
	t.Helper()
	ex := rec.last(t)
	var want, have any
	if err := json.Unmarshal(ex.ResponseBody, &want); err != nil {
		t.Fatalf("%s %s: server body is not JSON: %v", ex.Method, ex.Path, err)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &have); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, have) {
		t.Errorf("%s %s: typed response differs from the body sent\n got: %s\nwant: %s", ex.Method, ex.Path, b, ex.ResponseBody)
	}
}

// sentJSON fails unless the last request's body is exactly want (as JSON values).
func sentJSON(t *testing.T, rec *recorder, want string) {
	t.Helper()
	ex := rec.last(t)
	var w, g any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %s: %v", want, err)
	}
	if err := json.Unmarshal(ex.RequestBody, &g); err != nil {
		t.Fatalf("%s %s: request body %q is not JSON: %v", ex.Method, ex.Path, ex.RequestBody, err)
	}
	if !reflect.DeepEqual(w, g) {
		t.Errorf("%s %s: sent %s, want %s", ex.Method, ex.Path, ex.RequestBody, want)
	}
}

// apiError asserts err is a *client.Error with the status and type.
func apiError(t *testing.T, err error, status int, errorType string) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %T %v, want *client.Error %d %s", err, err, status, errorType)
	}
	if e.StatusCode != status || e.ErrorType != errorType {
		t.Fatalf("got %d %s (%s), want %d %s", e.StatusCode, e.ErrorType, e.ErrorMessage, status, errorType)
	}
	wantURL := "https://stytch.com/docs/api-reference/b2b/api/errors/" + itoa(status) + "#" + errorType
	if e.ErrorURL != wantURL || e.ErrorMessage == "" || !requestIDPattern.MatchString(e.RequestID) {
		t.Errorf("error envelope: url %q message %q request_id %q", e.ErrorURL, e.ErrorMessage, e.RequestID)
	}
	return e
}

// pbkdf2Hash imports password as a Stytch pbkdf_2 hash: a cheap one keeps the race build fast.
func pbkdf2Hash(password string) (hash string, cfg *client.PBKDF2Config) {
	salt := []byte("sparekey-test-salt")
	dk, err := pbkdf2.Key(sha256.New, password, salt, 1000, 32)
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(dk), &client.PBKDF2Config{
		Salt: base64.StdEncoding.EncodeToString(salt), IterationAmount: 1000, KeyLength: 32, Algorithm: "sha256",
	}
}

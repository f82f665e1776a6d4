package api

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
)

func TestBucketsRefillAndForgetIdleKeys(t *testing.T) {
	b := newBuckets(2, 3) // 2/s, bursts of 3
	now := time.Unix(1_800_000_000, 0)
	for i := range 3 {
		if ok, _ := b.take("a", now); !ok {
			t.Fatalf("request %d of a burst of 3 was refused", i+1)
		}
	}
	ok, wait := b.take("a", now)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("4th request: ok=%v wait=%v, want refused for 500ms", ok, wait)
	}
	if ok, _ := b.take("b", now); !ok {
		t.Fatal("another key has its own bucket")
	}
	if ok, _ := b.take("a", now.Add(500*time.Millisecond)); !ok {
		t.Fatal("a token is back after 500ms")
	}
	// A refused request spends nothing: the bucket is not pushed into debt.
	b.take("a", now.Add(500*time.Millisecond))
	if ok, _ := b.take("a", now.Add(time.Second)); !ok {
		t.Fatal("refused requests must not delay the next token")
	}
	b.take("c", now.Add(2*time.Minute)) // sweeps: a and b have been idle long enough to be full
	if _, kept := b.byKey["a"]; kept {
		t.Error("an idle, refilled bucket is forgotten")
	}
}

func TestClientIP(t *testing.T) {
	s := &Server{trustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	for _, tc := range []struct {
		remote, xff, want string
	}{
		{"203.0.113.7:5000", "", "203.0.113.7"},
		{"203.0.113.7:5000", "198.51.100.1", "203.0.113.7"},                  // untrusted peer: the header is the client's say-so
		{"10.1.2.3:5000", "198.51.100.1", "198.51.100.1"},                    // through our load balancer
		{"10.1.2.3:5000", "1.2.3.4, 198.51.100.1, 10.9.9.9", "198.51.100.1"}, // right-most untrusted hop; 1.2.3.4 was the client's claim
		{"10.1.2.3:5000", "garbage, 198.51.100.1", "198.51.100.1"},           // a forged entry left of a real one is ignored
		{"10.1.2.3:5000", "198.51.100.1, garbage", "10.1.2.3"},               // malformed nearest hop: trust nothing beyond the proxy
		{"10.1.2.3:5000", "", "10.1.2.3"},
		{"[::1]:5000", "2001:db8::1", "2001:db8::1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := s.clientIP(r); got != tc.want {
			t.Errorf("remote %s, X-Forwarded-For %q: client %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
}

// A client over its rate gets the Stytch envelope 429 too_many_requests with Retry-After, the
// project limit counts only authenticated requests, and the operations routes are never limited.
func TestRateLimitAnswers(t *testing.T) {
	svc, projectID, sec := newInternalService(t, auth.DefaultConfig())
	s := New(svc, slog.New(slog.NewTextHandler(io.Discard, nil)), WithRateLimits(RateLimits{PerIP: 0.5, PerIPBurst: 3, PerProject: 0.5, PerProjectBurst: 2}))

	send := func(path, remote string, authed bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		r.RemoteAddr = remote
		if authed {
			r.SetBasicAuth(projectID, sec)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	jwks := "/v1/b2b/sessions/jwks/" + projectID
	for i := range 3 {
		if w := send(jwks, "192.0.2.1:1", false); w.Code != 200 {
			t.Fatalf("request %d within the burst: %d %s", i+1, w.Code, w.Body)
		}
	}
	w := send(jwks, "192.0.2.1:1", false)
	if w.Code != 429 {
		t.Fatalf("over the per-IP rate: %d, want 429", w.Code)
	}
	if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
		t.Errorf("Retry-After = %q, want the 2 s until the next token", w.Header().Get("Retry-After"))
	}
	wantEnvelope(t, w, 429, "too_many_requests")
	if w := send("/healthz", "192.0.2.1:1", false); w.Code != 200 {
		t.Errorf("/healthz is never rate limited: %d", w.Code)
	}
	// The project's bucket: two authenticated requests from two fresh IPs, then 429.
	orgs := "/v1/b2b/organizations/none"
	for i, ip := range []string{"192.0.2.10:1", "192.0.2.11:1"} {
		if w := send(orgs, ip, true); w.Code != 404 {
			t.Fatalf("authenticated request %d: %d %s", i+1, w.Code, w.Body)
		}
	}
	if w := send(orgs, "192.0.2.12:1", false); w.Code != 401 {
		t.Fatalf("unauthenticated: %d, want 401 (bad credentials never reach the project bucket)", w.Code)
	}
	w = send(orgs, "192.0.2.13:1", true)
	wantEnvelope(t, w, 429, "too_many_requests")
}

func wantEnvelope(t *testing.T, w *httptest.ResponseRecorder, status int, errorType string) {
	t.Helper()
	if w.Code != status || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %s, want %d JSON", w.Code, w.Header().Get("Content-Type"), status)
	}
	body := w.Body.String()
	for _, want := range []string{`"status_code":` + strconv.Itoa(status), `"error_type":"` + errorType + `"`, `"error_url":"https://stytch.com/docs/api-reference/b2b/api/errors/` + strconv.Itoa(status) + `#` + errorType + `"`, `"request_id":"request-id-test-`} {
		if !strings.Contains(body, want) {
			t.Errorf("body %s lacks %s", body, want)
		}
	}
}

package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sparekey/sparekey/client"
)

// misbehaving serves handler for every path: it plays the proxies and broken servers a client
// meets in the wild, which a real sparekey never is.
func misbehaving(t *testing.T, handler http.HandlerFunc) *client.Client {
	t.Helper()
	ts := httptest.NewServer(handler)
	t.Cleanup(ts.Close)
	c, err := client.New(ts.URL, "project-test-x", "secret-test-x")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func getCodes(c *client.Client, ctx context.Context) error {
	_, err := c.RecoveryCodes.Get(ctx, client.GetParams{OrganizationID: "o", MemberID: "m"})
	return err
}

func TestErrorKinds(t *testing.T) {
	ctx := context.Background()

	t.Run("connection refused is a TransportError", func(t *testing.T) {
		ts := httptest.NewServer(http.NotFoundHandler())
		url := ts.URL
		ts.Close()
		c, err := client.New(url, "p", "s")
		if err != nil {
			t.Fatal(err)
		}
		err = getCodes(c, ctx)
		var te *client.TransportError
		var ae *client.Error
		if !errors.As(err, &te) || errors.As(err, &ae) {
			t.Fatalf("got %T %v, want *client.TransportError only", err, err)
		}
		if te.Method != "GET" || te.Path != "/v1/b2b/recovery_codes/o/m" {
			t.Errorf("TransportError names %s %s", te.Method, te.Path)
		}
	})

	// The server holds every request until the client gives up.
	hang := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

	t.Run("the client's timeout is a deadline", func(t *testing.T) {
		ts := httptest.NewServer(http.HandlerFunc(hang))
		t.Cleanup(ts.Close)
		c, err := client.New(ts.URL, "p", "s", client.WithTimeout(20*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		err = getCodes(c, ctx)
		var te *client.TransportError
		if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %T %v, want a TransportError wrapping context.DeadlineExceeded", err, err)
		}
	})

	t.Run("the caller's deadline", func(t *testing.T) {
		c := misbehaving(t, hang)
		dctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if err := getCodes(c, dctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want context.DeadlineExceeded", err)
		}
	})

	t.Run("the caller's cancellation", func(t *testing.T) {
		c := misbehaving(t, hang)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := getCodes(c, cctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	})

	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		status  int
		reason  string
	}{
		{"an HTML page from a proxy", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			io.WriteString(w, "<html><body>Bad Gateway</body></html>")
		}, 502, "not a JSON object"},
		{"an empty success", func(w http.ResponseWriter, r *http.Request) {}, 200, "not a JSON object"},
		{"a body cut short by the connection", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "500")
			io.WriteString(w, `{"request_id":"request-id-test-1","recovery_codes":[`)
		}, 200, "cut short"},
		{"a JSON object cut short", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"request_id":"request-id-test-1","recovery_codes":["abcd`)
		}, 200, "cut short"},
		{"a field of the wrong type", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"request_id":"request-id-test-1","recovery_codes":"abcd","status_code":200}`)
		}, 200, "cannot unmarshal"},
		{"a success body without status_code", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"request_id":"request-id-test-1","recovery_codes":[]}`)
		}, 200, "status_code"},
		{"trailing garbage", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"status_code":200}{"status_code":200}`)
		}, 200, "trailing data"},
		{"an error status with a text body", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "upstream timed out", 504)
		}, 504, "not a JSON object"},
	} {
		t.Run(tc.name+" is a ResponseError", func(t *testing.T) {
			err := getCodes(misbehaving(t, tc.handler), ctx)
			var re *client.ResponseError
			var ae *client.Error
			var te *client.TransportError
			if !errors.As(err, &re) || errors.As(err, &ae) || errors.As(err, &te) {
				t.Fatalf("got %T %v, want *client.ResponseError only", err, err)
			}
			if re.StatusCode != tc.status || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("got status %d, %q; want %d and %q", re.StatusCode, err, tc.status, tc.reason)
			}
		})
	}

	t.Run("an error envelope is an Error", func(t *testing.T) {
		c := misbehaving(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "42")
			w.WriteHeader(429)
			io.WriteString(w, `{"status_code":429,"request_id":"request-id-test-9","error_type":"user_lock_limit_reached",
				"error_message":"Too many failed attempts.","error_url":"https://stytch.com/docs/api-reference/b2b/api/errors/429#user_lock_limit_reached",
				"error_details":{"hint":"wait"}}`)
		})
		err := getCodes(c, ctx)
		var e *client.Error
		if !errors.As(err, &e) {
			t.Fatalf("got %T %v", err, err)
		}
		want := client.Error{
			StatusCode: 429, RequestID: "request-id-test-9", ErrorType: "user_lock_limit_reached", ErrorMessage: "Too many failed attempts.",
			ErrorURL: "https://stytch.com/docs/api-reference/b2b/api/errors/429#user_lock_limit_reached", ErrorDetails: map[string]any{"hint": "wait"},
			RetryAfter: 42 * time.Second,
		}
		equal(t, "error", *e, want)
		if got := e.Error(); got != "sparekey: HTTP 429 user_lock_limit_reached: Too many failed attempts. (request-id-test-9)" {
			t.Errorf("Error() = %q", got)
		}
	})
}

func TestRequestHeaders(t *testing.T) {
	var got http.Header
	handler := func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		io.WriteString(w, `{"request_id":"r","status_code":200,"organization_id":"o"}`)
	}
	ts := httptest.NewServer(http.HandlerFunc(handler))
	t.Cleanup(ts.Close)
	for _, tc := range []struct {
		opts []client.Option
		ua   string
	}{
		{nil, client.DefaultUserAgent},
		{[]client.Option{client.WithUserAgent("acme-backend/2.0")}, "acme-backend/2.0"},
	} {
		c, err := client.New(ts.URL+"/", "project-test-1", "secret-test-1", tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Organizations.Delete(context.Background(), client.DeleteOrganizationParams{OrganizationID: "o"}); err != nil {
			t.Fatal(err)
		}
		if got.Get("User-Agent") != tc.ua || got.Get("Authorization") != "Basic cHJvamVjdC10ZXN0LTE6c2VjcmV0LXRlc3QtMQ==" || got.Get("Content-Type") != "" {
			t.Errorf("headers: %v", got)
		}
	}
}

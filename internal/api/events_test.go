package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/sparekey/sparekey/internal/auth"
)

// The audit trail is read through GET /sparekey/v1/events, and each event carries the request
// id, client IP and user agent of the API request that caused it.
func TestEventsEndpoint(t *testing.T) {
	svc, projectID, sec := newInternalService(t, auth.DefaultConfig())
	s := New(svc, slog.New(slog.NewTextHandler(io.Discard, nil)), WithTrustedProxies([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}))
	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.SetBasicAuth(projectID, sec)
		r.RemoteAddr = "10.0.0.5:4000"
		r.Header.Set("X-Forwarded-For", "198.51.100.9")
		r.Header.Set("User-Agent", "Stytch Node v14.2.0")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: not JSON: %s", method, path, w.Body)
		}
		return w.Code, out
	}
	_, org := call("POST", "/v1/b2b/organizations", `{"organization_name":"Acme"}`)
	orgID := org["organization"].(map[string]any)["organization_id"].(string)
	_, m := call("POST", "/v1/b2b/organizations/"+orgID+"/members", `{"email_address":"ada@example.com"}`)
	memberID := m["member_id"].(string)
	call("POST", "/v1/b2b/totp/migrate", `{"organization_id":"`+orgID+`","member_id":"`+memberID+`","secret":"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}`)
	status, got := call("GET", "/v1/b2b/recovery_codes/"+orgID+"/"+memberID, "")
	if status != 200 {
		t.Fatalf("GET codes: %d %v", status, got)
	}
	readRequest := got["request_id"].(string)

	status, page := call("GET", "/sparekey/v1/events?type=recovery_codes.read&member_id="+memberID, "")
	if status != 200 {
		t.Fatalf("events: %d %v", status, page)
	}
	events := page["events"].([]any)
	if len(events) != 1 || page["next_cursor"] != nil {
		t.Fatalf("want exactly one recovery_codes.read event and no next page, got %v", page)
	}
	e := events[0].(map[string]any)
	for k, want := range map[string]any{
		"type": "recovery_codes.read", "project_id": projectID, "organization_id": orgID, "member_id": memberID,
		"request_id": readRequest, "client_ip": "198.51.100.9", "user_agent": "Stytch Node v14.2.0",
	} {
		if e[k] != want {
			t.Errorf("event %s = %v, want %v", k, e[k], want)
		}
	}
	if d := e["data"].(map[string]any); d["count"] != float64(10) {
		t.Errorf("event data %v, want count 10", d)
	}
	// The migrate wrote totp.enrolled and recovery_codes.issued; comma-separated types work.
	_, page = call("GET", "/sparekey/v1/events?type=totp.enrolled,recovery_codes.issued&limit=1", "")
	if n := len(page["events"].([]any)); n != 1 || page["next_cursor"] == nil {
		t.Fatalf("limit=1 of two events: %d events, next_cursor %v", n, page["next_cursor"])
	}
	_, next := call("GET", "/sparekey/v1/events?type=totp.enrolled,recovery_codes.issued&limit=1&cursor="+page["next_cursor"].(string), "")
	if n := len(next["events"].([]any)); n != 1 || next["next_cursor"] != nil {
		t.Fatalf("second page: %d events, next_cursor %v", n, next["next_cursor"])
	}
	for _, bad := range []string{"since=yesterday", "limit=0", "limit=x", "type=no.such", "cursor=!!", "member_id=ada"} {
		status, body := call("GET", "/sparekey/v1/events?"+bad, "")
		if status != 400 || body["error_type"] != "invalid_request_value" {
			t.Errorf("%s: %d %v, want 400 invalid_request_value", bad, status, body)
		}
	}
	r := httptest.NewRequest("GET", "/sparekey/v1/events", nil)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != 401 {
		t.Errorf("events without credentials: %d, want 401", w.Code)
	}
}

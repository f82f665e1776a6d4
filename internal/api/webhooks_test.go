package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sparekey/sparekey/internal/auth"
)

// The webhook endpoints: register (the secret is shown once), list (never the secret), delete,
// deliveries; every refusal in the Stytch envelope, and every call scoped to its project.
func TestWebhookEndpoints(t *testing.T) {
	svc, projectID, sec := newInternalService(t, auth.DefaultConfig())
	other, otherSecret, err := svc.CreateProject(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s := New(svc, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	call := func(id, secret, method, path, body string) (int, map[string]any) {
		t.Helper()
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.SetBasicAuth(id, secret)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: not JSON: %s", method, path, w.Body)
		}
		if out["status_code"] != float64(w.Code) || out["request_id"] == "" {
			t.Errorf("%s %s: envelope %v does not match HTTP %d", method, path, out, w.Code)
		}
		return w.Code, out
	}
	as := func(method, path, body string) (int, map[string]any) { return call(projectID, sec, method, path, body) }

	status, created := as("POST", "/sparekey/v1/webhooks", `{"url":"https://hooks.example.com/in?src=sk","event_types":["recovery_code.used","member.locked","recovery_code.used"]}`)
	if status != 200 {
		t.Fatalf("create: %d %v", status, created)
	}
	hook := created["webhook"].(map[string]any)
	id, _ := hook["webhook_id"].(string)
	secret, _ := created["secret"].(string)
	if !strings.HasPrefix(id, "webhook-test-") || !strings.HasPrefix(secret, "whsec_") || len(secret) < 30 {
		t.Fatalf("create answered id %q and a secret of %d characters", id, len(secret))
	}
	if got, _ := json.Marshal(hook["event_types"]); string(got) != `["recovery_code.used","member.locked"]` {
		t.Errorf("event_types %s, want the two types once each, in order", got)
	}
	_, all := as("POST", "/sparekey/v1/webhooks", `{"url":"http://127.0.0.1:9/all"}`)
	if types := all["webhook"].(map[string]any)["event_types"]; types == nil || len(types.([]any)) != 0 {
		t.Errorf("a webhook without event_types lists %v, want []", types)
	}

	status, listed := as("GET", "/sparekey/v1/webhooks", "")
	if status != 200 || len(listed["webhooks"].([]any)) != 2 {
		t.Fatalf("list: %d %v", status, listed)
	}
	raw, _ := json.Marshal(listed)
	if strings.Contains(string(raw), "secret") || strings.Contains(string(raw), strings.TrimPrefix(secret, "whsec_")) {
		t.Errorf("the list shows a secret: %s", raw)
	}
	if first := listed["webhooks"].([]any)[0].(map[string]any); first["webhook_id"] != id || first["url"] != "https://hooks.example.com/in?src=sk" {
		t.Errorf("first listed webhook %v, want the first created", first)
	}

	for _, tc := range []struct {
		name, body   string
		status       int
		errorType    string
		messageInSub string
	}{
		{"no url", `{"event_types":[]}`, 400, "bad_request", ""},
		{"url of the wrong type", `{"url":42}`, 400, "bad_request", ""},
		{"event_types of the wrong type", `{"url":"https://a.example","event_types":"member.locked"}`, 400, "bad_request", ""},
		{"ftp", `{"url":"ftp://files.example.com/hook"}`, 400, "invalid_request_value", "http"},
		{"relative", `{"url":"/hook"}`, 400, "invalid_request_value", "http"},
		{"no host", `{"url":"https:///hook"}`, 400, "invalid_request_value", "http"},
		{"user info", `{"url":"https://user:pw@hooks.example.com/"}`, 400, "invalid_request_value", "user info"},
		{"fragment", `{"url":"https://hooks.example.com/#x"}`, 400, "invalid_request_value", "fragment"},
		{"too long", `{"url":"https://hooks.example.com/` + strings.Repeat("a", 2048) + `"}`, 400, "invalid_request_value", "2048"},
		{"unknown event type", `{"url":"https://hooks.example.com/","event_types":["recovery_code.used","no.such"]}`, 400, "invalid_request_value", "event_types"},
		{"empty event type", `{"url":"https://hooks.example.com/","event_types":[""]}`, 400, "invalid_request_value", "event_types"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := as("POST", "/sparekey/v1/webhooks", tc.body)
			if status != tc.status || body["error_type"] != tc.errorType {
				t.Fatalf("%d %v, want %d %s", status, body, tc.status, tc.errorType)
			}
			if msg, _ := body["error_message"].(string); !strings.Contains(msg, tc.messageInSub) {
				t.Errorf("error_message %q does not mention %q", msg, tc.messageInSub)
			}
		})
	}

	// Deliveries: the two webhooks got nothing yet; a bad limit is refused.
	status, ds := as("GET", "/sparekey/v1/webhooks/"+id+"/deliveries", "")
	if status != 200 || len(ds["deliveries"].([]any)) != 0 {
		t.Errorf("deliveries: %d %v", status, ds)
	}
	for _, bad := range []string{"limit=0", "limit=1001", "limit=x"} {
		if status, body := as("GET", "/sparekey/v1/webhooks/"+id+"/deliveries?"+bad, ""); status != 400 || body["error_type"] != "invalid_request_value" {
			t.Errorf("deliveries?%s: %d %v", bad, status, body)
		}
	}

	// Another project sees none of them and cannot delete them.
	status, otherList := call(other.ID, otherSecret, "GET", "/sparekey/v1/webhooks", "")
	if status != 200 || len(otherList["webhooks"].([]any)) != 0 {
		t.Errorf("another project's list: %d %v", status, otherList)
	}
	for _, path := range []string{"/sparekey/v1/webhooks/" + id, "/sparekey/v1/webhooks/" + id + "/deliveries"} {
		method := "DELETE"
		if strings.HasSuffix(path, "deliveries") {
			method = "GET"
		}
		if status, body := call(other.ID, otherSecret, method, path, ""); status != 404 || body["error_type"] != "webhook_not_found" {
			t.Errorf("another project's %s %s: %d %v", method, path, status, body)
		}
	}
	if status, body := as("DELETE", "/sparekey/v1/webhooks/webhook-test-00000000-0000-4000-8000-000000000000", ""); status != 404 || body["error_type"] != "webhook_not_found" {
		t.Errorf("delete unknown: %d %v", status, body)
	}
	if status, body := as("DELETE", "/sparekey/v1/webhooks/not-a-webhook", ""); status != 404 || body["error_type"] != "webhook_not_found" {
		t.Errorf("delete of a malformed id: %d %v", status, body)
	}
	status, deleted := as("DELETE", "/sparekey/v1/webhooks/"+id, "")
	if status != 200 || deleted["webhook_id"] != id {
		t.Fatalf("delete: %d %v", status, deleted)
	}
	if status, body := as("DELETE", "/sparekey/v1/webhooks/"+id, ""); status != 404 || body["error_type"] != "webhook_not_found" {
		t.Errorf("delete again: %d %v", status, body)
	}
	if _, listed := as("GET", "/sparekey/v1/webhooks", ""); len(listed["webhooks"].([]any)) != 1 {
		t.Errorf("after a delete the list has %d webhooks, want 1", len(listed["webhooks"].([]any)))
	}

	// The project's credentials are required; the secret never reaches the log.
	r := httptest.NewRequest("GET", "/sparekey/v1/webhooks", nil)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != 401 {
		t.Errorf("list without credentials: %d, want 401", w.Code)
	}
	if strings.Contains(logs.String(), strings.TrimPrefix(secret, "whsec_")) {
		t.Errorf("the log holds a webhook secret")
	}
}

// Twenty webhooks per project, then too_many_webhooks.
func TestWebhookLimit(t *testing.T) {
	svc, projectID, _ := newInternalService(t, auth.DefaultConfig())
	url := "https://hooks.example.com/"
	for i := range auth.MaxWebhooks {
		if _, _, err := svc.CreateWebhook(context.Background(), projectID, auth.CreateWebhookInput{URL: &url}); err != nil {
			t.Fatalf("webhook %d: %v", i+1, err)
		}
	}
	_, _, err := svc.CreateWebhook(context.Background(), projectID, auth.CreateWebhookInput{URL: &url})
	if auth.TypeOf(err) != "too_many_webhooks" {
		t.Fatalf("webhook %d: %v, want too_many_webhooks", auth.MaxWebhooks+1, err)
	}
}

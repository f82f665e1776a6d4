package client_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparekey/sparekey/client"
	"github.com/sparekey/sparekey/internal/webhook"
)

// A webhook registered through the client receives the project's events, and the client's own
// verifier accepts what the server's dispatcher signs.
func TestWebhooks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	sk := newSparekey(t, clock.Now)
	c, rec := newClient(t, sk, clock)

	var (
		mu       sync.Mutex
		payloads []*client.WebhookPayload
		secret   string
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := client.VerifyWebhookAt(secret, r.Header, body, clock.Now()); err != nil {
			t.Errorf("the receiver refused a delivery: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		p, err := client.ParseWebhookAt(secret, r.Header, body, clock.Now())
		if err != nil {
			t.Errorf("ParseWebhook: %v", err)
		}
		payloads = append(payloads, p)
	}))
	t.Cleanup(receiver.Close)

	created, err := c.Webhooks.Create(ctx, client.CreateWebhookParams{URL: receiver.URL + "/sparekey", EventTypes: []string{"member.locked", "recovery_codes.read"}})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, rec, created)
	sentJSON(t, rec, `{"url":"`+receiver.URL+`/sparekey","event_types":["member.locked","recovery_codes.read"]}`)
	mu.Lock()
	secret = created.Secret
	mu.Unlock()
	if !strings.HasPrefix(created.Secret, "whsec_") || created.Webhook.WebhookID == "" || !created.Webhook.CreatedAt.Equal(clock.Now()) {
		t.Fatalf("Create answered %+v", created.Webhook)
	}
	every, err := c.Webhooks.Create(ctx, client.CreateWebhookParams{URL: receiver.URL + "/every"})
	if err != nil {
		t.Fatal(err)
	}
	sentJSON(t, rec, `{"url":"`+receiver.URL+`/every"}`)
	listed, err := c.Webhooks.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, rec, listed)
	if len(listed.Webhooks) != 2 || listed.Webhooks[0].WebhookID != created.Webhook.WebhookID || len(listed.Webhooks[1].EventTypes) != 0 {
		t.Fatalf("List: %+v", listed.Webhooks)
	}
	if _, err := c.Webhooks.Delete(ctx, every.Webhook.WebhookID); err != nil {
		t.Fatal(err)
	}

	// A GET of recovery codes records recovery_codes.read: the webhook gets it.
	org, err := c.Organizations.Create(ctx, client.CreateOrganizationParams{OrganizationName: "Hooked"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Members.Create(ctx, client.CreateMemberParams{OrganizationID: org.Organization.OrganizationID, EmailAddress: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.TOTPs.Migrate(ctx, client.MigrateTOTPParams{OrganizationID: org.Organization.OrganizationID, MemberID: m.MemberID,
		Secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", RecoveryCodes: []string{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RecoveryCodes.Get(ctx, client.GetParams{OrganizationID: org.Organization.OrganizationID, MemberID: m.MemberID}); err != nil {
		t.Fatal(err)
	}
	d, err := webhook.New(sk.svc, webhook.Config{}, slog.New(slog.DiscardHandler), webhook.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := d.DeliverDue(ctx); err != nil || n != 1 {
		t.Fatalf("DeliverDue: %d, %v; want the one recovery_codes.read (the webhook of every type is deleted)", n, err)
	}
	mu.Lock()
	got := payloads
	mu.Unlock()
	if len(got) != 1 || got[0].Type != "recovery_codes.read" || got[0].Data.MemberID != m.MemberID || got[0].Data.Data["count"] != float64(10) ||
		!got[0].Timestamp.Equal(clock.Now()) {
		t.Fatalf("the receiver got %+v", got)
	}

	deliveries, err := c.Webhooks.Deliveries(ctx, client.ListWebhookDeliveriesParams{WebhookID: created.Webhook.WebhookID, Limit: client.Int(10)})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, rec, deliveries)
	if len(deliveries.Deliveries) != 1 {
		t.Fatalf("Deliveries: %+v", deliveries.Deliveries)
	}
	dl := deliveries.Deliveries[0]
	if dl.EventID != got[0].Data.EventID || dl.State != "delivered" || dl.Attempts != 1 || dl.LastStatus == nil || *dl.LastStatus != 200 || dl.NextAttemptAt != nil {
		t.Errorf("the delivery: %+v", dl)
	}

	var apiErr *client.Error
	if _, err := c.Webhooks.Create(ctx, client.CreateWebhookParams{URL: "ftp://example.com/"}); !errors.As(err, &apiErr) || apiErr.ErrorType != "invalid_request_value" {
		t.Errorf("Create of an ftp URL: %v", err)
	}
	if _, err := c.Webhooks.Delete(ctx, every.Webhook.WebhookID); !errors.As(err, &apiErr) || apiErr.ErrorType != "webhook_not_found" {
		t.Errorf("Delete twice: %v", err)
	}
	if _, err := c.Webhooks.Delete(ctx, ""); !errors.Is(err, client.ErrMissingParameter) {
		t.Errorf("Delete without an id: %v", err)
	}
}

func TestVerifyWebhook(t *testing.T) {
	t.Parallel()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // the Standard Webhooks documentation's example
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	signed := func(id string, at time.Time, b []byte) http.Header {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
		h.Set("webhook-signature", webhook.Sign(key, id, at.Unix(), b))
		return h
	}
	// The specification's test vector.
	h := signed("msg_p5jXN8AQM9LWM0D4loKWxJek", now, body)
	if got := h.Get("webhook-signature"); got != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("signature of the test vector %q", got)
	}
	if err := client.VerifyWebhookAt(secret, h, body, now); err != nil {
		t.Fatalf("the test vector does not verify: %v", err)
	}
	// Several signatures (during a secret rotation a sender may send two): one must match.
	multi := h.Clone()
	multi.Set("webhook-signature", "v1,Zm9v v2,whatever "+h.Get("webhook-signature"))
	if err := client.VerifyWebhookAt(secret, multi, body, now); err != nil {
		t.Errorf("a matching signature among others: %v", err)
	}

	for _, tc := range []struct {
		name   string
		secret string
		header http.Header
		body   []byte
		now    time.Time
	}{
		{"another body", secret, h, []byte(`{"test": 2432232315}`), now},
		{"another id", secret, func() http.Header { x := h.Clone(); x.Set("webhook-id", "msg_other"); return x }(), body, now},
		{"another timestamp", secret, func() http.Header {
			x := h.Clone()
			x.Set("webhook-timestamp", strconv.FormatInt(now.Unix()+1, 10))
			return x
		}(), body, now},
		{"another secret", "whsec_" + strings.Repeat("A", 32), h, body, now},
		{"too old", secret, h, body, now.Add(client.WebhookTolerance + time.Second)},
		{"from the future", secret, h, body, now.Add(-client.WebhookTolerance - time.Second)},
		{"no signature", secret, func() http.Header { x := h.Clone(); x.Del("webhook-signature"); return x }(), body, now},
		{"v2 only", secret, func() http.Header {
			x := h.Clone()
			x.Set("webhook-signature", strings.Replace(h.Get("webhook-signature"), "v1,", "v2,", 1))
			return x
		}(), body, now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := client.VerifyWebhookAt(tc.secret, tc.header, tc.body, tc.now); !errors.Is(err, client.ErrWebhookSignature) {
				t.Errorf("VerifyWebhookAt: %v, want ErrWebhookSignature", err)
			}
		})
	}
	if err := client.VerifyWebhookAt("not-a-secret", h, body, now); err == nil || errors.Is(err, client.ErrWebhookSignature) {
		t.Errorf("a malformed secret: %v, want a usage error", err)
	}
	// Within the tolerance either way.
	for _, skew := range []time.Duration{client.WebhookTolerance, -client.WebhookTolerance} {
		if err := client.VerifyWebhookAt(secret, h, body, now.Add(skew)); err != nil {
			t.Errorf("a clock %s off: %v", skew, err)
		}
	}
}

package client

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// WebhooksClient manages the project's webhook endpoints (sparekey's own API, beyond Stytch's).
// sparekey POSTs each audit event to the endpoints subscribed to its type, signed the Standard
// Webhooks way; receivers check the signature with [VerifyWebhook] or [ParseWebhook].
type WebhooksClient struct{ c *Client }

// Webhook is a registered endpoint. Its secret is shown only by Create.
type Webhook struct {
	WebhookID  string    `json:"webhook_id"`
	URL        string    `json:"url"`
	EventTypes []string  `json:"event_types"` // empty: every type
	CreatedAt  time.Time `json:"created_at"`
}

// CreateWebhookParams registers an endpoint.
type CreateWebhookParams struct {
	URL        string   `json:"url"`                  // absolute http:// or https:// URL
	EventTypes []string `json:"event_types,omitzero"` // nil or empty: every type
}

// CreateWebhookResponse carries the new webhook and its signing secret ("whsec_..."), which is
// shown this once: store it where the receiver can read it.
type CreateWebhookResponse struct {
	RequestID  string  `json:"request_id"`
	Webhook    Webhook `json:"webhook"`
	Secret     string  `json:"secret"`
	StatusCode int     `json:"status_code"`
}

// ListWebhooksResponse lists the project's webhooks, oldest first.
type ListWebhooksResponse struct {
	RequestID  string    `json:"request_id"`
	Webhooks   []Webhook `json:"webhooks"`
	StatusCode int       `json:"status_code"`
}

// DeleteWebhookResponse names the deleted webhook.
type DeleteWebhookResponse struct {
	RequestID  string `json:"request_id"`
	WebhookID  string `json:"webhook_id"`
	StatusCode int    `json:"status_code"`
}

// WebhookDelivery is the state of one event's delivery to one webhook.
type WebhookDelivery struct {
	EventID       string     `json:"event_id"` // also the webhook-id header of every attempt
	EventType     string     `json:"event_type"`
	EventTime     time.Time  `json:"event_time"`
	State         string     `json:"state"` // pending, delivered or failed (given up)
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at"` // when pending
	LastAttemptAt *time.Time `json:"last_attempt_at"`
	LastStatus    *int       `json:"last_status"` // nil when no answer arrived
	LastError     *string    `json:"last_error"`
	FinishedAt    *time.Time `json:"finished_at"`
}

// ListWebhookDeliveriesParams selects a webhook's most recent deliveries.
type ListWebhookDeliveriesParams struct {
	WebhookID string // required
	Limit     *int   // 1..1000; the server's default is 100
}

// ListWebhookDeliveriesResponse lists deliveries, newest event first.
type ListWebhookDeliveriesResponse struct {
	RequestID  string            `json:"request_id"`
	Deliveries []WebhookDelivery `json:"deliveries"`
	StatusCode int               `json:"status_code"`
}

// Create registers an endpoint and returns its signing secret, shown only now.
func (w *WebhooksClient) Create(ctx context.Context, p CreateWebhookParams) (*CreateWebhookResponse, error) {
	return answer[CreateWebhookResponse](ctx, w.c, call{method: http.MethodPost, path: "/sparekey/v1/webhooks", body: p})
}

// List returns the project's webhooks, without their secrets.
func (w *WebhooksClient) List(ctx context.Context) (*ListWebhooksResponse, error) {
	return answer[ListWebhooksResponse](ctx, w.c, call{method: http.MethodGet, path: "/sparekey/v1/webhooks"})
}

// Delete removes a webhook; its deliveries not yet made are dropped.
func (w *WebhooksClient) Delete(ctx context.Context, webhookID string) (*DeleteWebhookResponse, error) {
	if err := required("webhook_id", webhookID); err != nil {
		return nil, err
	}
	return answer[DeleteWebhookResponse](ctx, w.c, call{method: http.MethodDelete, path: "/sparekey/v1/webhooks/" + pathEscape(webhookID)})
}

// Deliveries returns a webhook's most recent deliveries, newest event first.
func (w *WebhooksClient) Deliveries(ctx context.Context, p ListWebhookDeliveriesParams) (*ListWebhookDeliveriesResponse, error) {
	if err := required("webhook_id", p.WebhookID); err != nil {
		return nil, err
	}
	q := url.Values{}
	if p.Limit != nil {
		q.Set("limit", strconv.Itoa(*p.Limit))
	}
	return answer[ListWebhookDeliveriesResponse](ctx, w.c, call{method: http.MethodGet, path: "/sparekey/v1/webhooks/" + pathEscape(p.WebhookID) + "/deliveries", query: q})
}

// WebhookTolerance is how far a webhook's timestamp may be from the receiver's clock: older
// messages are refused, so a captured request cannot be replayed later.
const WebhookTolerance = 5 * time.Minute

// ErrWebhookSignature is the error of a webhook request that does not verify: a missing or
// malformed header, a timestamp outside [WebhookTolerance], or no matching signature.
var ErrWebhookSignature = errors.New("sparekey: webhook signature does not verify")

// VerifyWebhook checks a webhook request sparekey sent, the Standard Webhooks way, against the
// secret Create returned. body must be the exact bytes received. It returns nil or an error
// matching [ErrWebhookSignature].
func VerifyWebhook(secret string, header http.Header, body []byte) error {
	return VerifyWebhookAt(secret, header, body, time.Now())
}

// VerifyWebhookAt is [VerifyWebhook] with the receiver's clock given.
func VerifyWebhookAt(secret string, header http.Header, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if !strings.HasPrefix(secret, "whsec_") || err != nil || len(key) == 0 {
		return errors.New("sparekey: webhook secret must be whsec_ followed by base64")
	}
	bad := func(why string) error { return fmt.Errorf("%w: %s", ErrWebhookSignature, why) }
	id, ts, sigs := header.Get("webhook-id"), header.Get("webhook-timestamp"), header.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return bad("webhook-id, webhook-timestamp or webhook-signature header missing")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return bad("webhook-timestamp is not Unix seconds")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > WebhookTolerance || d < -WebhookTolerance {
		return bad("webhook-timestamp is too far from now")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(sigs) {
		version, value, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		if got, err := base64.StdEncoding.DecodeString(value); err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return bad("no v1 signature matches")
}

// WebhookPayload is the body of a webhook request: the event's type and time, and the event as
// [EventsClient.List] returns it. Its EventID is the webhook-id header: the same on every attempt,
// so a receiver that stores the ids it handled can drop the rare duplicate.
type WebhookPayload struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      Event     `json:"data"`
}

// ParseWebhook verifies a webhook request ([VerifyWebhook]) and decodes its body.
func ParseWebhook(secret string, header http.Header, body []byte) (*WebhookPayload, error) {
	return ParseWebhookAt(secret, header, body, time.Now())
}

// ParseWebhookAt is [ParseWebhook] with the receiver's clock given.
func ParseWebhookAt(secret string, header http.Header, body []byte, now time.Time) (*WebhookPayload, error) {
	if err := VerifyWebhookAt(secret, header, body, now); err != nil {
		return nil, err
	}
	var p WebhookPayload
	if err := strictUnmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("sparekey: webhook body: %w", err)
	}
	return &p, nil
}

package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
)

// Webhooks: sparekey's own API (beyond the contract) for the endpoints that receive a project's
// audit events, signed the Standard Webhooks way.

type webhookJSON struct {
	WebhookID  string    `json:"webhook_id"`
	URL        string    `json:"url"`
	EventTypes []string  `json:"event_types"`
	CreatedAt  timestamp `json:"created_at"`
}

func webhookJSONFrom(w auth.Webhook) webhookJSON {
	return webhookJSON{WebhookID: w.ID, URL: w.URL, EventTypes: list(w.EventTypes), CreatedAt: timestamp(w.CreatedAt)}
}

type createWebhookRequest struct {
	URL        *string  `json:"url"`
	EventTypes []string `json:"event_types"`
}

type webhookCreatedResponse struct {
	envelope
	Webhook webhookJSON `json:"webhook"`
	// Secret is shown in this response only: sparekey keeps it sealed and never shows it again.
	Secret string `json:"secret"`
}

// createWebhook registers an endpoint: POST /sparekey/v1/webhooks {"url", "event_types"}.
func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request, projectID string) {
	var req createWebhookRequest
	if !s.decode(w, r, &req) {
		return
	}
	hook, secret, err := s.svc.CreateWebhook(r.Context(), projectID, auth.CreateWebhookInput{URL: req.URL, EventTypes: req.EventTypes})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.ok(w, r, &webhookCreatedResponse{Webhook: webhookJSONFrom(hook), Secret: secret})
}

type webhooksResponse struct {
	envelope
	Webhooks []webhookJSON `json:"webhooks"`
}

// listWebhooks lists the project's endpoints, oldest first, without their secrets:
// GET /sparekey/v1/webhooks.
func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request, projectID string) {
	hooks, err := s.svc.Webhooks(r.Context(), projectID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := &webhooksResponse{Webhooks: make([]webhookJSON, 0, len(hooks))}
	for _, h := range hooks {
		out.Webhooks = append(out.Webhooks, webhookJSONFrom(h))
	}
	s.ok(w, r, out)
}

type webhookDeletedResponse struct {
	envelope
	WebhookID string `json:"webhook_id"`
}

// deleteWebhook removes an endpoint; its pending deliveries are dropped:
// DELETE /sparekey/v1/webhooks/{webhook_id}.
func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, projectID string) {
	id := r.PathValue("webhook_id")
	if err := s.svc.DeleteWebhook(r.Context(), projectID, id); err != nil {
		s.fail(w, r, err)
		return
	}
	s.ok(w, r, &webhookDeletedResponse{WebhookID: id})
}

// preciseTime is a delivery time, kept to the millisecond: RFC 3339 with as many fraction digits
// as it needs (none for a whole second, as Go's time.Time writes it), null when zero.
type preciseTime time.Time

func (t preciseTime) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + tt.UTC().Format(time.RFC3339Nano) + `"`), nil
}

type webhookDeliveryJSON struct {
	EventID       string      `json:"event_id"`
	EventType     string      `json:"event_type"`
	EventTime     timestamp   `json:"event_time"`
	State         string      `json:"state"`
	Attempts      int         `json:"attempts"`
	NextAttemptAt preciseTime `json:"next_attempt_at"`
	LastAttemptAt preciseTime `json:"last_attempt_at"`
	LastStatus    *int        `json:"last_status"`
	LastError     *string     `json:"last_error"`
	FinishedAt    preciseTime `json:"finished_at"`
}

type webhookDeliveriesResponse struct {
	envelope
	Deliveries []webhookDeliveryJSON `json:"deliveries"`
}

const (
	defaultDeliveriesLimit = 100
	maxDeliveriesLimit     = 1000
)

// listWebhookDeliveries shows the endpoint's most recent deliveries, newest event first:
// GET /sparekey/v1/webhooks/{webhook_id}/deliveries?limit=. Finished ones are kept for a week.
func (s *Server) listWebhookDeliveries(w http.ResponseWriter, r *http.Request, projectID string) {
	limit := defaultDeliveriesLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDeliveriesLimit {
			s.fail(w, r, auth.ErrInvalidRequestValue)
			return
		}
		limit = n
	}
	ds, err := s.svc.WebhookDeliveries(r.Context(), projectID, r.PathValue("webhook_id"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := &webhookDeliveriesResponse{Deliveries: make([]webhookDeliveryJSON, 0, len(ds))}
	for _, d := range ds {
		j := webhookDeliveryJSON{
			EventID: d.EventID, EventType: d.EventType, EventTime: timestamp(d.EventTime), State: d.State, Attempts: d.Attempts,
			NextAttemptAt: preciseTime(d.NextAttemptAt), LastAttemptAt: preciseTime(d.LastAttemptAt), FinishedAt: preciseTime(d.FinishedAt),
		}
		if d.LastStatus != 0 {
			j.LastStatus = &d.LastStatus
		}
		if d.LastError != "" {
			j.LastError = &d.LastError
		}
		out.Deliveries = append(out.Deliveries, j)
	}
	s.ok(w, r, out)
}

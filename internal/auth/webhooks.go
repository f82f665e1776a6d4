package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Webhook is an endpoint of a project that receives its audit events as signed HTTP POSTs
// (Standard Webhooks). Its signing secret is stored sealed under the keyring, bound to the
// project and the webhook id; the plaintext is shown once, when the webhook is created.
type Webhook struct {
	ID        string // "webhook-test-<uuid>"; the uuid is version 7, so ids sort in creation order
	ProjectID string
	URL       string
	// EventTypes are the types delivered; empty means every type, present and future.
	EventTypes   []string
	SealedSecret []byte
	CreatedAt    time.Time
}

// Webhook delivery states.
const (
	DeliveryPending   = "pending"   // to be attempted (again)
	DeliveryDelivered = "delivered" // the endpoint answered 2xx
	DeliveryFailed    = "failed"    // given up: no 2xx within the give-up time
)

// WebhookDelivery is one event to send to one webhook: the outbox row the store writes, in the
// transaction of the event, for every webhook of the project whose EventTypes match. It is
// identified by (Webhook.ID, Event.ID); the event id is the webhook-id header, the same on every
// attempt, so receivers can drop duplicates.
type WebhookDelivery struct {
	Webhook  Webhook // ID, ProjectID, URL and SealedSecret; EventTypes are not loaded
	Event    Event
	Attempts int    // attempts recorded before this claim
	Claim    string // the lease this delivery is held under
}

// WebhookDeliveryStatus is what the store records of a delivery.
type WebhookDeliveryStatus struct {
	WebhookID     string
	EventID       string
	EventType     string
	EventTime     time.Time
	State         string // one of the Delivery* states
	Attempts      int
	NextAttemptAt time.Time // when State is pending
	LastAttemptAt time.Time // zero before the first attempt
	LastStatus    int       // HTTP status of the last attempt; 0 when none arrived
	LastError     string    // why the last attempt failed, short; never a secret or a response body
	FinishedAt    time.Time // when it was delivered or given up
}

// Outcomes of one delivery attempt.
const (
	// AttemptDelivered: a 2xx answer. The delivery is done.
	AttemptDelivered = "delivered"
	// AttemptRetry: no 2xx; try again at NextAttemptAt.
	AttemptRetry = "retry"
	// AttemptFailed: no 2xx, and the give-up time has come. The delivery is done.
	AttemptFailed = "failed"
	// AttemptReleased: not attempted, or cut short by a shutdown: the lease is given back and
	// the attempt not counted, so the delivery is due again at once.
	AttemptReleased = "released"
)

// WebhookAttempt is the outcome of an attempt made under a claim.
type WebhookAttempt struct {
	WebhookID     string
	EventID       string
	Claim         string
	Outcome       string    // one of the Attempt* outcomes
	At            time.Time // when the attempt ended
	NextAttemptAt time.Time // AttemptRetry only
	Status        int       // HTTP status; 0 when no answer arrived
	Error         string    // short; never a secret or a response body
}

// WebhookJob is a claimed delivery ready to be sent: the delivery with its webhook's secret
// opened. SecretErr is set instead of Secret when the secret does not open (a fault: the master
// key opened the database's data at start).
type WebhookJob struct {
	WebhookDelivery
	Secret    []byte
	SecretErr error
}

// Webhook limits and formats.
const (
	kindWebhook = "webhook"
	// WebhookSecretPrefix starts every signing secret, as Standard Webhooks has it: the rest is
	// the standard base64 of the key bytes.
	WebhookSecretPrefix = "whsec_"
	webhookSecretBytes  = 24 // 192 bits, as the Standard Webhooks reference implementation makes
	// MaxWebhooks bounds a project's endpoints: each event is written once per matching webhook.
	MaxWebhooks      = 20
	maxWebhookURLLen = 2048
)

// webhookSecretAD binds a sealed webhook secret to its project and webhook.
func webhookSecretAD(projectID, webhookID string) []byte {
	return []byte("webhook-secret\x00" + projectID + "\x00" + webhookID)
}

// CreateWebhookInput is a webhook registration as the API receives it.
type CreateWebhookInput struct {
	URL        *string
	EventTypes []string // nil or empty: every type
}

// CreateWebhook registers an endpoint and returns it with its signing secret, which is shown
// this once: only a sealed copy is stored. Errors: ErrBadRequest (no url), ErrInvalidWebhookURL,
// ErrInvalidWebhookEventType, ErrTooManyWebhooks.
func (s *Service) CreateWebhook(ctx context.Context, projectID string, in CreateWebhookInput) (Webhook, string, error) {
	if in.URL == nil {
		return Webhook{}, "", ErrBadRequest
	}
	if !validWebhookURL(*in.URL) {
		return Webhook{}, "", ErrInvalidWebhookURL
	}
	types := []string{}
	for _, typ := range in.EventTypes {
		if !oneOf(typ, EventTypes...) {
			return Webhook{}, "", ErrInvalidWebhookEventType
		}
		if !oneOf(typ, types...) {
			types = append(types, typ)
		}
	}
	raw := make([]byte, webhookSecretBytes)
	if _, err := rand.Read(raw); err != nil {
		return Webhook{}, "", err
	}
	w := Webhook{
		ID:         kindWebhook + "-test-" + uuid.Must(uuid.NewV7()).String(), // v7: ids sort in creation order
		ProjectID:  projectID,
		URL:        *in.URL,
		EventTypes: types,
		CreatedAt:  s.now(),
	}
	w.SealedSecret = s.keys.Seal(raw, webhookSecretAD(projectID, w.ID))
	created := newEvent(ctx, EventWebhookCreated, w.CreatedAt, projectID, "", "", map[string]any{
		"webhook_id": w.ID, "url": RedactWebhookURL(w.URL), "event_types": types,
	})
	if err := s.store.CreateWebhook(ctx, w, MaxWebhooks, created); err != nil {
		return Webhook{}, "", err
	}
	return w, WebhookSecretPrefix + base64.StdEncoding.EncodeToString(raw), nil
}

// validWebhookURL accepts an absolute http or https URL with a host. User info is refused
// (credentials would sit in the database in plain text; the signature is the authentication),
// and so is a fragment (never sent).
func validWebhookURL(s string) bool {
	if len(s) > maxWebhookURLLen || !cleanText(s) || strings.ContainsAny(s, " \t\r\n#") {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.User != nil || u.Hostname() == "" {
		return false
	}
	return u.Scheme == "http" || u.Scheme == "https"
}

// RedactWebhookURL is a webhook URL as logs and errors may show it: scheme, host and path, without
// the query (which may hold a token of the receiver's).
func RedactWebhookURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}

// Webhooks lists the project's webhooks, oldest first.
func (s *Service) Webhooks(ctx context.Context, projectID string) ([]Webhook, error) {
	ws, err := s.store.Webhooks(ctx, projectID)
	if ws == nil {
		ws = []Webhook{}
	}
	return ws, err
}

// DeleteWebhook removes a webhook and its deliveries not yet made; ErrWebhookNotFound.
func (s *Service) DeleteWebhook(ctx context.Context, projectID, webhookID string) error {
	if !strings.HasPrefix(webhookID, kindWebhook+"-") || len(webhookID) > maxEventFilterID || !cleanText(webhookID) {
		return ErrWebhookNotFound
	}
	deleted := newEvent(ctx, EventWebhookDeleted, s.now(), projectID, "", "", map[string]any{"webhook_id": webhookID})
	return s.store.DeleteWebhook(ctx, projectID, webhookID, deleted)
}

// ClaimWebhookDeliveries leases up to limit due deliveries, of every project, for lease from now
// and opens their secrets. A delivery leased here is claimed by no one else until the lease ends
// or FinishWebhookDelivery settles it, on any replica.
func (s *Service) ClaimWebhookDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]WebhookJob, error) {
	claim := uuid.NewString()
	ds, err := s.store.ClaimWebhookDeliveries(ctx, claim, now, now.Add(lease), limit)
	if err != nil {
		return nil, err
	}
	jobs := make([]WebhookJob, len(ds))
	for i, d := range ds {
		jobs[i].WebhookDelivery = d
		secret, err := s.keys.Open(d.Webhook.SealedSecret, webhookSecretAD(d.Webhook.ProjectID, d.Webhook.ID))
		if err != nil {
			jobs[i].SecretErr = fmt.Errorf("open the secret of webhook %s: %w", d.Webhook.ID, err)
			continue
		}
		jobs[i].Secret = secret
	}
	return jobs, nil
}

// FinishWebhookDelivery records an attempt's outcome; ErrWebhookClaimLost when the lease ended
// and the delivery was claimed again, or the webhook was deleted meanwhile.
func (s *Service) FinishWebhookDelivery(ctx context.Context, a WebhookAttempt) error {
	return s.store.FinishWebhookDelivery(ctx, a)
}

// WebhookQueueDepth counts the deliveries still pending, of every project.
func (s *Service) WebhookQueueDepth(ctx context.Context) (int64, error) {
	return s.store.WebhookQueueDepth(ctx)
}

// PruneWebhookDeliveries forgets the deliveries finished before before, and those of deleted
// webhooks.
func (s *Service) PruneWebhookDeliveries(ctx context.Context, before time.Time) (int64, error) {
	return s.store.PruneWebhookDeliveries(ctx, before)
}

// WebhookDeliveries returns the webhook's most recent deliveries (by event, newest first), at
// most limit; ErrWebhookNotFound.
func (s *Service) WebhookDeliveries(ctx context.Context, projectID, webhookID string, limit int) ([]WebhookDeliveryStatus, error) {
	if !strings.HasPrefix(webhookID, kindWebhook+"-") || len(webhookID) > maxEventFilterID || !cleanText(webhookID) {
		return nil, ErrWebhookNotFound
	}
	return s.store.WebhookDeliveries(ctx, projectID, webhookID, limit)
}

package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sparekey/sparekey/internal/auth"
)

// Queue is the outbox as the dispatcher sees it; *auth.Service implements it.
type Queue interface {
	ClaimWebhookDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]auth.WebhookJob, error)
	FinishWebhookDelivery(ctx context.Context, a auth.WebhookAttempt) error
	WebhookQueueDepth(ctx context.Context) (int64, error)
	PruneWebhookDeliveries(ctx context.Context, before time.Time) (int64, error)
}

var _ Queue = (*auth.Service)(nil)

// Config tunes delivery. The zero value of a field takes its default.
type Config struct {
	// Timeout bounds one attempt: connecting, sending, and the answer's status and headers.
	// Default 10s.
	Timeout time.Duration
	// GiveUp is how long after its event a delivery is tried: the last retry is scheduled no later
	// than then, and a failure at or after it marks the delivery failed. Default 24h.
	GiveUp time.Duration
	// Workers is how many attempts one process makes at once. Default 4.
	Workers int
	// RetryBase is the back-off after the first failed attempt; it doubles with each further one
	// up to RetryMax. Default 5s (tests use 100ms).
	RetryBase time.Duration
	// RetryMax caps the back-off. Default 1h.
	RetryMax time.Duration
	// Poll is how often the outbox is looked at when nothing pokes the dispatcher: deliveries
	// other replicas wrote, retries coming due. Default 1s.
	Poll time.Duration
	// Retention is how long finished (delivered or failed) deliveries are kept. Default 7 days.
	Retention time.Duration
	// ShutdownGrace is how long attempts in flight get to finish once Run's context ends; those
	// still running are cut short and released (retried at once by the next claim). Default 5s.
	ShutdownGrace time.Duration
}

// Defaults.
const (
	DefaultTimeout       = 10 * time.Second
	DefaultGiveUp        = 24 * time.Hour
	DefaultWorkers       = 4
	DefaultRetryBase     = 5 * time.Second
	DefaultRetryMax      = time.Hour
	DefaultPoll          = time.Second
	DefaultRetention     = 7 * 24 * time.Hour
	DefaultShutdownGrace = 5 * time.Second
)

func (c Config) withDefaults() Config {
	set := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	set(&c.Timeout, DefaultTimeout)
	set(&c.GiveUp, DefaultGiveUp)
	set(&c.RetryBase, DefaultRetryBase)
	set(&c.RetryMax, DefaultRetryMax)
	set(&c.Poll, DefaultPoll)
	set(&c.Retention, DefaultRetention)
	set(&c.ShutdownGrace, DefaultShutdownGrace)
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	return c
}

// Validate reports a setting that cannot work.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"timeout", c.Timeout}, {"give-up time", c.GiveUp}, {"retry base", c.RetryBase}, {"retry maximum", c.RetryMax},
		{"poll interval", c.Poll}, {"retention", c.Retention}, {"shutdown grace", c.ShutdownGrace}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("webhook %s must not be negative, not %s", d.name, d.v))
		}
	}
	if c.Workers < 1 || c.Workers > 256 {
		errs = append(errs, fmt.Errorf("webhook workers must be from 1 to 256, not %d", c.Workers))
	}
	if c.RetryMax < c.RetryBase {
		errs = append(errs, fmt.Errorf("webhook retry maximum %s is below the retry base %s", c.RetryMax, c.RetryBase))
	}
	return errors.Join(errs...)
}

// lease is how long a claim holds a delivery: long enough for an attempt and its bookkeeping,
// short enough that a crashed process's deliveries come back soon.
func (c Config) lease() time.Duration { return 2*c.Timeout + 5*time.Second }

// Backoff is the pause after the attempts-th failed attempt (1 for the first): RetryBase doubled
// for each attempt before it, capped at RetryMax, of which the first half is fixed and the second
// drawn by jitter (uniform in [0, n]) so that receivers recovering from an outage are not hit by
// every retry at once, yet never sooner than half the schedule.
func (c Config) Backoff(attempts int, jitter func(n time.Duration) time.Duration) time.Duration {
	c = c.withDefaults()
	d := c.RetryBase
	for i := 1; i < attempts && d < c.RetryMax; i++ {
		d *= 2
	}
	d = min(d, c.RetryMax)
	half := d / 2
	return d - half + jitter(half)
}

// Dispatcher delivers webhooks. Create it with New, start Run, and Poke it after a commit that
// may have written deliveries.
type Dispatcher struct {
	q      Queue
	cfg    Config
	log    *slog.Logger
	clock  func() time.Time
	jitter func(n time.Duration) time.Duration
	client *http.Client
	poke   chan struct{}

	results *prometheus.CounterVec // nil: not counted
}

// Option adjusts a Dispatcher.
type Option func(*Dispatcher)

// WithClock replaces the wall clock (tests move time without sleeping).
func WithClock(now func() time.Time) Option { return func(d *Dispatcher) { d.clock = now } }

// WithJitter replaces the random part of the back-off: f returns a duration in [0, n].
func WithJitter(f func(n time.Duration) time.Duration) Option {
	return func(d *Dispatcher) { d.jitter = f }
}

// WithMetrics registers the dispatcher's metrics on reg: sparekey_webhook_queue_depth and
// sparekey_webhook_deliveries_total{result}.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(d *Dispatcher) {
		d.results = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparekey_webhook_deliveries_total",
			Help: "Webhook delivery attempts made by this process, by result: delivered (a 2xx answer), retry (failed, scheduled again), failed (failed at or after the give-up time: given up), released (cut short by a shutdown, not counted as an attempt).",
		}, []string{"result"})
		for _, r := range []string{auth.AttemptDelivered, auth.AttemptRetry, auth.AttemptFailed, auth.AttemptReleased} {
			d.results.WithLabelValues(r)
		}
		depth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sparekey_webhook_queue_depth",
			Help: "Webhook deliveries pending in the database, of every project: the same figure on every replica of one database (do not sum it).",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			n, err := d.q.WebhookQueueDepth(ctx)
			if err != nil {
				d.log.Warn("webhook queue depth", "err", err)
				return -1
			}
			return float64(n)
		})
		reg.MustRegister(d.results, depth)
	}
}

// New returns a dispatcher of q's deliveries.
func New(q Queue, cfg Config, log *slog.Logger, opts ...Option) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = cfg.Workers
	transport.ResponseHeaderTimeout = cfg.Timeout
	d := &Dispatcher{
		q:      q,
		cfg:    cfg,
		log:    log,
		clock:  time.Now,
		jitter: func(n time.Duration) time.Duration { return rand.N(n + 1) },
		client: &http.Client{
			Transport: transport,
			// A redirect is an answer, not a delivery: following it could carry a signed event to
			// a host the project never registered. It counts as a failed attempt.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		poke: make(chan struct{}, 1),
	}
	for _, opt := range opts {
		opt(d)
	}
	return d, nil
}

// Poke makes Run look for due deliveries now rather than at its next poll. It never blocks.
func (d *Dispatcher) Poke() {
	select {
	case d.poke <- struct{}{}:
	default:
	}
}

// minPokeGap bounds how often pokes make Run claim: a busy API pokes on every request.
const minPokeGap = 20 * time.Millisecond

// Run delivers until ctx ends. It then claims nothing more, gives the attempts in flight up to
// Config.ShutdownGrace to finish, cuts the rest short (their deliveries are released, so the next
// claim, here or on another replica, retries them at once), and returns when all are recorded.
func (d *Dispatcher) Run(ctx context.Context) {
	attemptCtx, cutShort := context.WithCancel(context.WithoutCancel(ctx))
	defer cutShort()
	var (
		wg        sync.WaitGroup
		done      = make(chan struct{}, d.cfg.Workers)
		free      = d.cfg.Workers
		backlog   bool // the last claim filled every free worker: more may be due
		lastPass  time.Time
		lastPrune time.Time
		timer     = time.NewTimer(0)
	)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			finished := make(chan struct{})
			go func() { wg.Wait(); close(finished) }()
			select {
			case <-finished:
			case <-time.After(d.cfg.ShutdownGrace):
				cutShort()
				<-finished
			}
			return
		case <-done:
			free++
			if !backlog {
				continue
			}
		case <-d.poke:
			if wait := minPokeGap - time.Since(lastPass); wait > 0 {
				timer.Reset(wait)
				continue
			}
		case <-timer.C:
		}
		lastPass = time.Now()
		if now := d.clock(); now.Sub(lastPrune) >= time.Hour {
			lastPrune = now
			d.prune(ctx, now)
		}
		backlog = false
		if free > 0 {
			jobs, err := d.q.ClaimWebhookDeliveries(ctx, d.clock(), d.cfg.lease(), free)
			if err != nil && ctx.Err() == nil {
				d.log.Warn("webhook: claim due deliveries", "err", err)
			}
			backlog = len(jobs) == free
			for _, job := range jobs {
				free--
				wg.Add(1)
				go func() {
					defer wg.Done()
					d.deliver(attemptCtx, job)
					done <- struct{}{}
				}()
			}
		}
		timer.Reset(d.cfg.Poll)
	}
}

// DeliverDue claims the deliveries due now, up to Config.Workers, attempts them all at once and
// records their outcomes, and returns how many it attempted. Run does this continuously; tests
// call it to step through a schedule.
func (d *Dispatcher) DeliverDue(ctx context.Context) (int, error) {
	jobs, err := d.q.ClaimWebhookDeliveries(ctx, d.clock(), d.cfg.lease(), d.cfg.Workers)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.deliver(ctx, job)
		}()
	}
	wg.Wait()
	return len(jobs), nil
}

func (d *Dispatcher) prune(ctx context.Context, now time.Time) {
	n, err := d.q.PruneWebhookDeliveries(ctx, now.Add(-d.cfg.Retention))
	switch {
	case err != nil && ctx.Err() == nil:
		d.log.Warn("webhook: prune finished deliveries", "err", err)
	case n > 0:
		d.log.Debug("webhook: pruned finished deliveries", "count", n)
	}
}

// deliver makes one attempt and records its outcome.
func (d *Dispatcher) deliver(ctx context.Context, job auth.WebhookJob) {
	a := d.attempt(ctx, job)
	if d.results != nil {
		d.results.WithLabelValues(a.Outcome).Inc()
	}
	// The outcome is recorded even while shutting down: a release left unrecorded would hold
	// the delivery until its lease ends.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := d.q.FinishWebhookDelivery(rctx, a)
	attrs := []any{"webhook_id", job.Webhook.ID, "event_id", job.Event.ID, "event_type", job.Event.Type, "project_id", job.Webhook.ProjectID}
	switch {
	case errors.Is(err, auth.ErrWebhookClaimLost):
		d.log.Info("webhook: delivery settled elsewhere meanwhile (webhook deleted, or lease ended)", attrs...)
		return
	case err != nil:
		d.log.Warn("webhook: record attempt", append(attrs, "err", err)...)
		return
	}
	attrs = append(attrs, "attempts", job.Attempts+1, "status", a.Status, "url", auth.RedactWebhookURL(job.Webhook.URL))
	switch a.Outcome {
	case auth.AttemptDelivered:
		d.log.Debug("webhook: delivered", attrs...)
	case auth.AttemptRetry:
		d.log.Info("webhook: attempt failed; will retry", append(attrs, "error", a.Error, "next_attempt_at", a.NextAttemptAt.UTC().Format(time.RFC3339Nano))...)
	case auth.AttemptFailed:
		d.log.Warn("webhook.delivery_failed", append(attrs, "error", a.Error, "event_time", job.Event.Time.Format(time.RFC3339), "give_up", d.cfg.GiveUp.String())...)
	}
}

// maxErrorLen bounds the error text recorded with an attempt.
const maxErrorLen = 200

// attempt POSTs the delivery once and says what became of it.
func (d *Dispatcher) attempt(ctx context.Context, job auth.WebhookJob) auth.WebhookAttempt {
	a := auth.WebhookAttempt{WebhookID: job.Webhook.ID, EventID: job.Event.ID, Claim: job.Claim}
	if job.SecretErr != nil {
		d.log.Error("webhook: cannot sign", "webhook_id", job.Webhook.ID, "err", job.SecretErr)
		return d.failed(a, job, 0, "the webhook's secret could not be opened", 0)
	}
	body, err := Payload(job.Event)
	if err != nil {
		return d.failed(a, job, 0, "encode the payload: "+err.Error(), 0)
	}
	actx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, job.Webhook.URL, bytes.NewReader(body))
	if err != nil {
		return d.failed(a, job, 0, "the URL cannot be requested", 0)
	}
	ts := d.clock().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sparekey-webhooks/1")
	req.Header.Set(HeaderID, job.Event.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(job.Secret, job.Event.ID, ts, body))
	resp, err := d.client.Do(req)
	if err != nil {
		if ctx.Err() != nil { // shutting down: not the receiver's fault, not an attempt
			a.Outcome, a.At = auth.AttemptReleased, d.clock()
			return a
		}
		return d.failed(a, job, 0, transportError(actx, err, d.cfg.Timeout), 0)
	}
	// Drain a little so the connection can be reused; the body itself is never kept.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		a.Outcome, a.At, a.Status = auth.AttemptDelivered, d.clock(), resp.StatusCode
		return a
	}
	msg := "HTTP " + resp.Status
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		msg += " (redirects are not followed)"
	}
	return d.failed(a, job, resp.StatusCode, msg, retryAfter(resp))
}

// failed records a failed attempt as a retry, or as given up once the give-up time has come.
// The last retry is scheduled at the give-up time at the latest.
func (d *Dispatcher) failed(a auth.WebhookAttempt, job auth.WebhookJob, status int, msg string, atLeast time.Duration) auth.WebhookAttempt {
	now := d.clock()
	a.At, a.Status, a.Error = now, status, truncate(msg, maxErrorLen)
	deadline := job.Event.Time.Add(d.cfg.GiveUp)
	if !now.Before(deadline) {
		a.Outcome = auth.AttemptFailed
		return a
	}
	wait := max(d.cfg.Backoff(job.Attempts+1, d.jitter), min(atLeast, d.cfg.RetryMax))
	a.Outcome, a.NextAttemptAt = auth.AttemptRetry, now.Add(wait)
	if a.NextAttemptAt.After(deadline) {
		a.NextAttemptAt = deadline
	}
	return a
}

// retryAfter honours a receiver's Retry-After in seconds on 429 and 503.
func retryAfter(resp *http.Response) time.Duration {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return 0
	}
	s, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || s < 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

// transportError describes a failed request without its URL, whose query may hold a token of the
// receiver's.
func transportError(ctx context.Context, err error, timeout time.Duration) string {
	if ctx.Err() != nil {
		return "timeout after " + timeout.String()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return "timeout after " + timeout.String()
		}
		err = ue.Err
	}
	return err.Error()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// payload is the body of every webhook POST, in the Standard Webhooks shape: the event type, a
// timestamp, and the event as GET /sparekey/v1/events shows it.
type payload struct {
	Type      string    `json:"type"`
	Timestamp string    `json:"timestamp"`
	Data      EventJSON `json:"data"`
}

// EventJSON is an event as sparekey shows it outside: in a webhook's payload and in
// GET /sparekey/v1/events, one shape for both.
type EventJSON struct {
	EventID        string         `json:"event_id"`
	Type           string         `json:"type"`
	Time           string         `json:"time"` // RFC 3339, UTC
	ProjectID      string         `json:"project_id"`
	OrganizationID string         `json:"organization_id"`
	MemberID       string         `json:"member_id"`
	RequestID      string         `json:"request_id"`
	ClientIP       string         `json:"client_ip"`
	UserAgent      string         `json:"user_agent"`
	Data           map[string]any `json:"data"` // {} when the event has none
}

// NewEventJSON is e's outside form.
func NewEventJSON(e auth.Event) EventJSON {
	data := e.Data
	if data == nil {
		data = map[string]any{}
	}
	return EventJSON{
		EventID: e.ID, Type: e.Type, Time: e.Time.UTC().Format(time.RFC3339), ProjectID: e.ProjectID,
		OrganizationID: e.OrganizationID, MemberID: e.MemberID,
		RequestID: e.RequestID, ClientIP: e.ClientIP, UserAgent: e.UserAgent, Data: data,
	}
}

// Payload is the body sent for an event.
func Payload(e auth.Event) ([]byte, error) {
	event := NewEventJSON(e)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(payload{Type: e.Type, Timestamp: event.Time, Data: event})
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), err
}

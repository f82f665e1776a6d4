package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/secret"
	"github.com/sparekey/sparekey/internal/store/sqlite"
	"github.com/sparekey/sparekey/internal/store/testdb"
	"github.com/sparekey/sparekey/internal/webhook"
)

// clock is a test clock the service and the dispatcher share.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// lockedBuffer collects log output written from the dispatcher's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a real service on a temp SQLite file, one project, and a dispatcher on a test clock.
type env struct {
	t         *testing.T
	db        *sqlite.DB
	svc       *auth.Service
	clock     *clock
	projectID string
	log       *lockedBuffer
	reg       *prometheus.Registry
	d         *webhook.Dispatcher
}

var t0 = time.Date(2026, time.March, 1, 9, 30, 0, 0, time.UTC)

// maxJitter makes the back-off deterministic: the whole jittered half.
func maxJitter(n time.Duration) time.Duration { return n }

func newEnv(t *testing.T, cfg webhook.Config) *env {
	t.Helper()
	ctx := context.Background()
	db := testdb.SQLite(t)
	kr, err := secret.NewKeyring(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{now: t0}
	svc, err := auth.NewService(db, kr, auth.DefaultConfig(), c.Now)
	if err != nil {
		t.Fatal(err)
	}
	// A project row is all webhooks need; the service's CreateProject would spend seconds of
	// -race time on an RSA key.
	p := auth.Project{ID: "project-test-" + uuid.NewString(), SecretDigest: make([]byte, 32), SealedPepper: make([]byte, 48), CreatedAt: t0}
	key := auth.SigningKey{KID: "jwk-test-" + uuid.NewString(), ProjectID: p.ID, SealedPrivateKey: make([]byte, 64), CreatedAt: t0}
	if err := db.CreateProject(ctx, p, key); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, svc: svc, clock: c, projectID: p.ID, log: &lockedBuffer{}, reg: prometheus.NewRegistry()}
	log := slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.d, err = webhook.New(svc, cfg, log, webhook.WithClock(c.Now), webhook.WithJitter(maxJitter), webhook.WithMetrics(e.reg))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// register creates a webhook of every event type at url and returns it with its secret.
func (e *env) register(url string) (auth.Webhook, string) {
	e.t.Helper()
	w, sec, err := e.svc.CreateWebhook(context.Background(), e.projectID, auth.CreateWebhookInput{URL: &url})
	if err != nil {
		e.t.Fatalf("CreateWebhook(%s): %v", url, err)
	}
	return w, sec
}

// record writes an event of the project at the clock's now, as an action of the domain would.
func (e *env) record(typ string, data map[string]any) auth.Event {
	e.t.Helper()
	ev := auth.Event{
		ID:             "event-test-" + uuid.NewString(),
		Type:           typ,
		Time:           e.clock.Now().Truncate(time.Second),
		ProjectID:      e.projectID,
		OrganizationID: "organization-test-" + uuid.NewString(),
		MemberID:       "member-test-" + uuid.NewString(),
		RequestID:      "request-id-test-" + uuid.NewString(),
		ClientIP:       "203.0.113.7",
		UserAgent:      "Stytch Node v14.2.0",
		Data:           data,
	}
	if err := e.db.RecordEvents(context.Background(), ev); err != nil {
		e.t.Fatal(err)
	}
	return ev
}

// deliverDue runs one dispatcher pass and checks how many deliveries it attempted.
func (e *env) deliverDue(want int, what string) {
	e.t.Helper()
	n, err := e.d.DeliverDue(context.Background())
	if err != nil {
		e.t.Fatalf("%s: DeliverDue: %v", what, err)
	}
	if n != want {
		e.t.Fatalf("%s: DeliverDue attempted %d deliveries, want %d", what, n, want)
	}
}

func (e *env) status(w auth.Webhook, eventID string) auth.WebhookDeliveryStatus {
	e.t.Helper()
	all, err := e.svc.WebhookDeliveries(context.Background(), e.projectID, w.ID, 100)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, s := range all {
		if s.EventID == eventID {
			return s
		}
	}
	e.t.Fatalf("no delivery of %s to %s", eventID, w.ID)
	return auth.WebhookDeliveryStatus{}
}

func (e *env) results(result string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sparekey_webhook_deliveries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	e.t.Fatalf("no sparekey_webhook_deliveries_total{result=%q}", result)
	return 0
}

func (e *env) gauge(name string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	e.t.Fatalf("no gauge %s", name)
	return 0
}

// received is one request a receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver is a real HTTP server whose answers the test scripts: each request takes the next
// status of answers (the last one repeats).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      []received
	answers  []int
	requests int
}

func newReceiver(t *testing.T, answers ...int) *receiver {
	r := &receiver{answers: answers}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{header: req.Header.Clone(), body: body})
		status := r.answers[min(r.requests, len(r.answers)-1)]
		r.requests++
		r.mu.Unlock()
		w.WriteHeader(status)
		fmt.Fprint(w, "receiver says: not the answer the dispatcher keeps")
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// verifyStandardWebhook is the receiver's side of the Standard Webhooks signature, written from
// the specification and independently of package webhook: the key is the base64 after "whsec_";
// the signed content is "<webhook-id>.<webhook-timestamp>.<body>"; webhook-signature holds
// space-separated "v1,<base64 HMAC-SHA256>" entries, one of which must match; the timestamp must
// be within five minutes of now.
func verifyStandardWebhook(secret string, h http.Header, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || !strings.HasPrefix(secret, "whsec_") {
		return fmt.Errorf("secret %q is not whsec_<base64>", "(hidden)")
	}
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("missing headers: id %q, timestamp %q, signature %q", id, ts, sigs)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q is not Unix seconds", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("webhook-timestamp %s is %s from now", ts, d)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no signature in %q matches", sigs)
}

func TestSignatureVerifiesWithTheStandardAlgorithm(t *testing.T) {
	t.Parallel()
	e := newEnv(t, webhook.Config{})
	rcv := newReceiver(t, 204)
	w, sec := e.register(rcv.URL + "/hooks/sparekey?source=test")
	if !strings.HasPrefix(sec, "whsec_") {
		t.Fatalf("secret %q does not start with whsec_", sec[:min(len(sec), 6)])
	}
	if key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sec, "whsec_")); err != nil || len(key) < 24 || len(key) > 32 {
		t.Fatalf("the secret's key is %d bytes (%v), want 24 to 32", len(key), err)
	}
	ev := e.record(auth.EventRecoveryCodeUsed, map[string]any{"remaining": 9, "note": "<&> ü"})
	e.deliverDue(1, "first pass")

	got := rcv.all()
	if len(got) != 1 {
		t.Fatalf("the receiver got %d requests, want 1", len(got))
	}
	r := got[0]
	if err := verifyStandardWebhook(sec, r.header, r.body, e.clock.Now()); err != nil {
		t.Fatalf("the signature does not verify: %v", err)
	}
	if r.header.Get("webhook-id") != ev.ID || r.header.Get("webhook-timestamp") != strconv.FormatInt(t0.Unix(), 10) {
		t.Errorf("webhook-id %q, webhook-timestamp %q; want the event id and the attempt's Unix time", r.header.Get("webhook-id"), r.header.Get("webhook-timestamp"))
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	// A signature of another body, id or timestamp, or under another key, does not verify.
	if verifyStandardWebhook(sec, r.header, append(r.body, ' '), e.clock.Now()) == nil {
		t.Errorf("a changed body verifies")
	}
	_, other := e.register(rcv.URL + "/other")
	if verifyStandardWebhook(other, r.header, r.body, e.clock.Now()) == nil {
		t.Errorf("another webhook's secret verifies")
	}
	// The body: the Standard Webhooks envelope around the event as GET /sparekey/v1/events shows it.
	want := `{"type":"recovery_code.used","timestamp":"2026-03-01T09:30:00Z","data":{"event_id":"` + ev.ID +
		`","type":"recovery_code.used","time":"2026-03-01T09:30:00Z","project_id":"` + e.projectID +
		`","organization_id":"` + ev.OrganizationID + `","member_id":"` + ev.MemberID + `","request_id":"` + ev.RequestID +
		`","client_ip":"203.0.113.7","user_agent":"Stytch Node v14.2.0","data":{"note":"<&> ü","remaining":9}}}`
	if string(r.body) != want {
		t.Errorf("body:\n%s\nwant:\n%s", r.body, want)
	}
	s := e.status(w, ev.ID)
	if s.State != auth.DeliveryDelivered || s.Attempts != 1 || s.LastStatus != 204 || !s.FinishedAt.Equal(t0) {
		t.Errorf("after a 204: %+v", s)
	}
	if strings.Contains(e.log.String(), strings.TrimPrefix(sec, "whsec_")) {
		t.Errorf("the log holds the webhook secret")
	}
}

func TestBackoffSchedule(t *testing.T) {
	t.Parallel()
	cfg := webhook.Config{RetryBase: 5 * time.Second, RetryMax: time.Hour}
	noJitter := func(time.Duration) time.Duration { return 0 }
	for attempts, want := range map[int]time.Duration{
		1: 5 * time.Second, 2: 10 * time.Second, 3: 20 * time.Second, 4: 40 * time.Second, 5: 80 * time.Second,
		10: 2560 * time.Second, 11: time.Hour, 12: time.Hour, 100: time.Hour,
	} {
		if got := cfg.Backoff(attempts, maxJitter); got != want {
			t.Errorf("Backoff(%d) with the most jitter = %s, want %s", attempts, got, want)
		}
		if got := cfg.Backoff(attempts, noJitter); got != want-want/2 {
			t.Errorf("Backoff(%d) with no jitter = %s, want half of %s", attempts, got, want)
		}
	}
	// The jitter draws from the second half only.
	var asked []time.Duration
	cfg.Backoff(3, func(n time.Duration) time.Duration { asked = append(asked, n); return n / 3 })
	if len(asked) != 1 || asked[0] != 10*time.Second {
		t.Errorf("jitter asked for %v, want one draw in [0, 10s]", asked)
	}
	if err := (webhook.Config{RetryBase: time.Minute, RetryMax: time.Second}).Validate(); err == nil {
		t.Errorf("a retry maximum below the base validates")
	}
	if err := (webhook.Config{Workers: -1}).Validate(); err == nil {
		t.Errorf("negative workers validate")
	}
}

// A receiver that fails for a while gets the event once it recovers, on the back-off schedule,
// under the same webhook-id each time and a fresh timestamp and signature.
func TestRetriesOnTheScheduleUntilDelivered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, webhook.Config{RetryBase: 5 * time.Second, RetryMax: time.Hour})
	rcv := newReceiver(t, 500, 502, 404, 200)
	w, sec := e.register(rcv.URL)
	ev := e.record(auth.EventMemberLocked, nil)

	at := t0
	for i, wait := range []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second} {
		e.deliverDue(1, fmt.Sprintf("attempt %d", i+1))
		s := e.status(w, ev.ID)
		if s.State != auth.DeliveryPending || s.Attempts != i+1 || !s.NextAttemptAt.Equal(at.Add(wait)) || s.LastStatus == 0 ||
			!strings.HasPrefix(s.LastError, "HTTP "+strconv.Itoa(s.LastStatus)) {
			t.Fatalf("after failed attempt %d at %s: %+v; want pending, next at +%s", i+1, at, s, wait)
		}
		if strings.Contains(s.LastError, "receiver says") {
			t.Errorf("the recorded error holds the receiver's body: %q", s.LastError)
		}
		e.clock.Set(at.Add(wait - time.Millisecond))
		e.deliverDue(0, "a millisecond early")
		at = at.Add(wait)
		e.clock.Set(at)
	}
	e.deliverDue(1, "the fourth attempt")
	if s := e.status(w, ev.ID); s.State != auth.DeliveryDelivered || s.Attempts != 4 || s.LastStatus != 200 {
		t.Fatalf("after a 200: %+v", s)
	}
	e.clock.Set(at.Add(24 * time.Hour))
	e.deliverDue(0, "after delivery")

	got := rcv.all()
	if len(got) != 4 {
		t.Fatalf("the receiver got %d requests, want 4", len(got))
	}
	attemptTimes := []time.Time{t0, t0.Add(5 * time.Second), t0.Add(15 * time.Second), t0.Add(35 * time.Second)}
	for i, r := range got {
		if id := r.header.Get("webhook-id"); id != ev.ID {
			t.Errorf("attempt %d: webhook-id %q, want %q on every attempt", i+1, id, ev.ID)
		}
		if ts := r.header.Get("webhook-timestamp"); ts != strconv.FormatInt(attemptTimes[i].Unix(), 10) {
			t.Errorf("attempt %d: webhook-timestamp %s, want the attempt's time %d", i+1, ts, attemptTimes[i].Unix())
		}
		if err := verifyStandardWebhook(sec, r.header, r.body, attemptTimes[i]); err != nil {
			t.Errorf("attempt %d: %v", i+1, err)
		}
	}
	if e.results(auth.AttemptRetry) != 3 || e.results(auth.AttemptDelivered) != 1 {
		t.Errorf("results: retry %v, delivered %v; want 3 and 1", e.results(auth.AttemptRetry), e.results(auth.AttemptDelivered))
	}
}

// A delivery is tried until the give-up time after its event, the last retry at that time, and
// then recorded as failed and logged at warn.
func TestGivesUpAfterTheGiveUpTime(t *testing.T) {
	t.Parallel()
	e := newEnv(t, webhook.Config{RetryBase: 20 * time.Second, RetryMax: time.Hour, GiveUp: time.Minute})
	rcv := newReceiver(t, 503)
	w, sec := e.register(rcv.URL + "/hook?token=receiver-token-abc")
	ev := e.record(auth.EventRecoveryCodesExhausted, map[string]any{"remaining": 0})

	e.deliverDue(1, "at the event")
	if s := e.status(w, ev.ID); !s.NextAttemptAt.Equal(t0.Add(20 * time.Second)) {
		t.Fatalf("first retry at %s, want +20s", s.NextAttemptAt)
	}
	e.clock.Set(t0.Add(20 * time.Second))
	e.deliverDue(1, "first retry")
	if s := e.status(w, ev.ID); !s.NextAttemptAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("second retry at %s, want the give-up time +1m (the back-off, +40s, would pass it)", s.NextAttemptAt)
	}
	e.clock.Set(t0.Add(time.Minute))
	e.deliverDue(1, "the last attempt, at the give-up time")
	s := e.status(w, ev.ID)
	if s.State != auth.DeliveryFailed || s.Attempts != 3 || s.LastStatus != 503 || !s.FinishedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after the last attempt: %+v; want failed after 3 attempts", s)
	}
	e.clock.Set(t0.Add(48 * time.Hour))
	e.deliverDue(0, "after giving up")
	if n := len(rcv.all()); n != 3 {
		t.Errorf("the receiver got %d requests, want 3", n)
	}
	log := e.log.String()
	if !strings.Contains(log, "level=WARN msg=webhook.delivery_failed") || !strings.Contains(log, "webhook_id="+w.ID) || !strings.Contains(log, "event_id="+ev.ID) {
		t.Errorf("no webhook.delivery_failed line at WARN naming the webhook and the event:\n%s", log)
	}
	for _, leak := range []string{"receiver-token-abc", strings.TrimPrefix(sec, "whsec_"), "receiver says"} {
		if strings.Contains(log, leak) {
			t.Errorf("the log holds %q", leak)
		}
	}
	if e.results(auth.AttemptFailed) != 1 {
		t.Errorf("failed results %v, want 1", e.results(auth.AttemptFailed))
	}
	if v := e.gauge("sparekey_webhook_queue_depth"); v != 0 {
		t.Errorf("queue depth %v after giving up, want 0", v)
	}
}

func TestReceiverAnswers(t *testing.T) {
	t.Parallel()
	t.Run("Retry-After on 429 postpones the retry", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, webhook.Config{RetryBase: 5 * time.Second})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
		}))
		t.Cleanup(srv.Close)
		w, _ := e.register(srv.URL)
		ev := e.record(auth.EventTOTPFailed, nil)
		e.deliverDue(1, "one attempt")
		if s := e.status(w, ev.ID); !s.NextAttemptAt.Equal(t0.Add(2*time.Minute)) || s.LastStatus != 429 {
			t.Errorf("after a 429 with Retry-After: 120: %+v; want the retry in 2m", s)
		}
	})
	t.Run("a redirect is not followed", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, webhook.Config{})
		elsewhere := newReceiver(t, 200)
		srv := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/stolen", http.StatusTemporaryRedirect))
		t.Cleanup(srv.Close)
		w, _ := e.register(srv.URL)
		ev := e.record(auth.EventTOTPFailed, nil)
		e.deliverDue(1, "one attempt")
		s := e.status(w, ev.ID)
		if s.State != auth.DeliveryPending || s.LastStatus != 307 || !strings.Contains(s.LastError, "redirects are not followed") {
			t.Errorf("after a 307: %+v", s)
		}
		if n := len(elsewhere.all()); n != 0 {
			t.Errorf("the redirect target got %d requests, want none", n)
		}
	})
	t.Run("a timeout is a failed attempt", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, webhook.Config{Timeout: 50 * time.Millisecond})
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(func() { close(release); srv.Close() })
		w, _ := e.register(srv.URL + "/slow?token=receiver-token-xyz")
		ev := e.record(auth.EventTOTPFailed, nil)
		e.deliverDue(1, "one attempt")
		s := e.status(w, ev.ID)
		if s.State != auth.DeliveryPending || s.Attempts != 1 || s.LastError != "timeout after 50ms" {
			t.Errorf("after a timeout: %+v", s)
		}
	})
	t.Run("a refused connection is a failed attempt whose error has no URL", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, webhook.Config{})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		w, _ := e.register("http://" + addr + "/hook?token=receiver-token-xyz")
		ev := e.record(auth.EventTOTPFailed, nil)
		e.deliverDue(1, "one attempt")
		s := e.status(w, ev.ID)
		if s.State != auth.DeliveryPending || s.LastStatus != 0 || !strings.Contains(s.LastError, "refused") || strings.Contains(s.LastError, "token") {
			t.Errorf("after a refused connection: %+v", s)
		}
		if strings.Contains(e.log.String(), "receiver-token-xyz") {
			t.Errorf("the log holds the URL's query")
		}
	})
}

// Run delivers promptly when poked, and on SIGTERM-like cancellation cuts short what hangs and
// releases it, so the next start delivers it at once without counting an attempt.
func TestRunDeliversAndReleasesOnStop(t *testing.T) {
	t.Parallel()
	e := newEnv(t, webhook.Config{ShutdownGrace: 20 * time.Millisecond, Poll: time.Hour})
	arrived := make(chan string, 16)
	hang := make(chan struct{})
	var hanging sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(body, &p)
		arrived <- p.Type
		if p.Type == auth.EventMemberLocked {
			hanging.Do(func() {
				select {
				case <-hang:
				case <-r.Context().Done():
				}
			})
		}
	}))
	t.Cleanup(func() { close(hang); srv.Close() })
	w, _ := e.register(srv.URL)

	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { e.d.Run(ctx); close(stopped) }()

	e.record(auth.EventTOTPFailed, nil)
	e.d.Poke()
	if got := <-arrived; got != auth.EventTOTPFailed {
		t.Fatalf("first arrival %q", got)
	}
	locked := e.record(auth.EventMemberLocked, nil)
	e.d.Poke()
	if got := <-arrived; got != auth.EventMemberLocked {
		t.Fatalf("second arrival %q", got)
	}
	stop() // the member.locked attempt hangs: it is cut short after the grace
	<-stopped
	s := e.status(w, locked.ID)
	if s.State != auth.DeliveryPending || s.Attempts != 0 || !s.NextAttemptAt.Equal(locked.Time) {
		t.Fatalf("a delivery cut short by the stop: %+v; want pending, no attempt counted, due as before", s)
	}
	if e.results(auth.AttemptReleased) != 1 {
		t.Errorf("released results %v, want 1", e.results(auth.AttemptReleased))
	}
	// The next process claims it at once: the lease was given back.
	e.deliverDue(1, "after the restart")
	if got := <-arrived; got != auth.EventMemberLocked {
		t.Fatalf("after the restart %q arrived", got)
	}
	if s := e.status(w, locked.ID); s.State != auth.DeliveryDelivered || s.Attempts != 1 {
		t.Errorf("after the restart: %+v", s)
	}
}

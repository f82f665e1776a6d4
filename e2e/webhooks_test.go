package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparekey/sparekey/client"
)

// webhookFlags make retries fast enough for a test: 100 ms doubling to at most 400 ms, and a
// look at the outbox every 50 ms besides the pokes of a replica's own requests.
var webhookFlags = []string{"--webhook-retry-base", "100ms", "--webhook-retry-max", "400ms", "--webhook-poll", "50ms"}

// webhookReceiver is a real HTTP endpoint in the test process, on loopback, that checks every
// request's Standard Webhooks signature and answers 500 while failing is set and 204 otherwise.
type webhookReceiver struct {
	*httptest.Server
	t *testing.T

	mu        sync.Mutex
	secret    string
	failing   bool
	attempts  map[string]int // by webhook-id, every request that verified
	delivered map[string]int // by webhook-id, the ones answered 2xx
	types     map[string]string
	bad       []string // why requests did not verify
	notify    chan struct{}
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	r := &webhookReceiver{t: t, attempts: map[string]int{}, delivered: map[string]int{}, types: map[string]string{}, notify: make(chan struct{}, 1)}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *webhookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	r.mu.Lock()
	defer func() {
		r.mu.Unlock()
		select {
		case r.notify <- struct{}{}:
		default:
		}
	}()
	if err != nil {
		r.bad = append(r.bad, "read body: "+err.Error())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	p, err := client.ParseWebhook(r.secret, req.Header, body)
	if err != nil {
		r.bad = append(r.bad, err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id := req.Header.Get("webhook-id")
	if id != p.Data.EventID {
		r.bad = append(r.bad, fmt.Sprintf("webhook-id %s names event %s", id, p.Data.EventID))
	}
	r.attempts[id]++
	r.types[id] = p.Type
	if r.failing {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	r.delivered[id]++
	w.WriteHeader(http.StatusNoContent)
}

func (r *webhookReceiver) setFailing(v bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failing = v
}

func (r *webhookReceiver) setSecret(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secret = s
}

// waitFor waits until cond holds of the receiver's state (checked after each request), or fails
// the test after 60 s: a bound on a hang, not a measure of speed.
func (r *webhookReceiver) waitFor(t *testing.T, what string, cond func(attempts, delivered map[string]int) bool) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		r.mu.Lock()
		ok := cond(r.attempts, r.delivered)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.notify:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("%s: not after 60s; attempts %v, delivered %v, refused %v", what, r.attempts, r.delivered, r.bad)
		}
	}
}

// checkExactlyOnce requires every event of want delivered exactly once, nothing else delivered,
// and every request signed right.
func (r *webhookReceiver) checkExactlyOnce(t *testing.T, want []string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, why := range r.bad {
		t.Errorf("the receiver refused a request: %s", why)
	}
	for _, id := range want {
		if n := r.delivered[id]; n != 1 {
			t.Errorf("event %s (%s) was delivered %d times, want exactly once", id, r.types[id], n)
		}
	}
	for id := range r.delivered {
		if !slices.Contains(want, id) {
			t.Errorf("the receiver got %s, which is no event of the project", id)
		}
	}
}

// sentEventIDs lists, through GET /sparekey/v1/events, every event of the project that the
// webhook hookID, registered before them all for every type, is sent: all but the news of its
// own registration.
func sentEventIDs(t *testing.T, c *apiClient, hookID string) []string {
	t.Helper()
	r := c.ok(t, http.MethodGet, "/sparekey/v1/events?limit=1000", nil)
	events, _ := r.Body["events"].([]any)
	if r.Body["next_cursor"] != nil {
		t.Fatalf("more than 1000 events")
	}
	var ids []string
	for _, e := range events {
		e := e.(map[string]any)
		if sentTo(e, hookID) {
			ids = append(ids, e["event_id"].(string))
		}
	}
	return ids
}

// sentTo reports whether the webhook hookID, registered for every type, is sent the event e (as
// GET /sparekey/v1/events shows it): all but its own webhook.created.
func sentTo(e map[string]any, hookID string) bool {
	data, _ := e["data"].(map[string]any)
	return e["type"] != "webhook.created" || data["webhook_id"] != hookID
}

// registerWebhook registers the receiver for every event type and hands it the secret.
func registerWebhook(t *testing.T, c *apiClient, r *webhookReceiver) (id, secret string) {
	t.Helper()
	resp := c.ok(t, http.MethodPost, "/sparekey/v1/webhooks", map[string]any{"url": r.URL + "/hooks/sparekey"})
	secret = resp.Str(t, "secret")
	r.setSecret(secret)
	return resp.Str(t, "webhook", "webhook_id"), secret
}

// memberWithCodes makes an organization and a member with TOTP and recovery codes: two events
// (totp.enrolled, recovery_codes.issued).
func webhookMember(t *testing.T, c *apiClient, name string) (orgID, memberID string) {
	t.Helper()
	orgID = createOrganization(t, c, name)
	memberID = createMember(t, c, orgID, strings.ToLower(name)+"@example.com")
	totpCreate(t, c, orgID, memberID)
	return orgID, memberID
}

// A receiver that fails for a while, across a restart of the server on its database, gets every
// event exactly once after it recovers; and the webhook's secret is nowhere in plain text.
func TestWebhookDeliverySurvivesFailureAndRestart(t *testing.T) {
	db := newSQLite(t)
	p := createProject(t, db.URL, db.Env)
	args := append([]string{"--log-level", "debug"}, webhookFlags...)
	dir := t.TempDir()
	srv := startServer(t, serverOptions{DB: db.URL, Env: db.Env, Args: args, ProjectID: p.ID, Dir: dir})
	c := srv.Client(p)
	rcv := newWebhookReceiver(t)
	rcv.setFailing(true)
	hookID, secret := registerWebhook(t, c, rcv)

	orgID, memberID := webhookMember(t, c, "Before")
	for range 5 {
		recoveryCodes(t, c, orgID, memberID) // recovery_codes.read
	}
	before := sentEventIDs(t, c, hookID)
	if len(before) != 7 {
		t.Fatalf("%d events before the restart, want 7", len(before))
	}
	// Every event has been tried, and failed, at least twice: the deliveries are pending.
	rcv.waitFor(t, "two failed attempts of each event", func(attempts, _ map[string]int) bool {
		for _, id := range before {
			if attempts[id] < 2 {
				return false
			}
		}
		return true
	})
	// Snapshot the database files while the server runs: the WAL holds what it wrote last.
	snap := t.TempDir()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		copyFile(t, db.Path+suffix, filepath.Join(snap, filepath.Base(db.Path)+suffix))
	}
	if code := srv.Stop(t); code != 0 {
		t.Fatalf("sparekey serve exited %d after SIGTERM, want 0", code)
	}
	firstOutput := srv.Output()
	rcv.mu.Lock()
	atStop := maps.Clone(rcv.attempts)
	rcv.mu.Unlock()

	// The same database again, the receiver still failing at first; more events come in.
	srv = startServer(t, serverOptions{DB: db.URL, Env: db.Env, Args: args, ProjectID: p.ID, Dir: dir})
	c = srv.Client(p)
	orgID2, memberID2 := webhookMember(t, c, "After")
	recoveryCodes(t, c, orgID2, memberID2)
	all := sentEventIDs(t, c, hookID)
	if len(all) != 10 {
		t.Fatalf("%d events after the restart, want 10", len(all))
	}
	// The new process retries the old deliveries (each gets a failed attempt more) and tries
	// the new ones.
	rcv.waitFor(t, "a failed attempt of each event by the restarted server", func(attempts, _ map[string]int) bool {
		for _, id := range all {
			if attempts[id] <= atStop[id] {
				return false
			}
		}
		return true
	})
	rcv.setFailing(false)
	rcv.waitFor(t, "every event delivered", func(_, delivered map[string]int) bool {
		for _, id := range all {
			if delivered[id] == 0 {
				return false
			}
		}
		return true
	})

	// The server's own record: every delivery delivered, after failed attempts. It is written
	// once the receiver has answered, so it may trail the receiver a little.
	var deliveries []any
	for deadline := time.Now().Add(60 * time.Second); ; {
		r := c.ok(t, http.MethodGet, "/sparekey/v1/webhooks/"+hookID+"/deliveries", nil)
		deliveries, _ = r.Body["deliveries"].([]any)
		if len(deliveries) != len(all) {
			t.Fatalf("the webhook has %d deliveries, want %d: %s", len(deliveries), len(all), r.Raw)
		}
		if !strings.Contains(string(r.Raw), `"state":"pending"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries still pending 60s after the receiver got every event: %s", r.Raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, d := range deliveries {
		d := d.(map[string]any)
		if d["state"] != "delivered" || fmt.Sprint(d["last_status"]) != "204" || fmt.Sprint(d["attempts"]) == "1" {
			t.Errorf("delivery %v: want delivered with 204 after failed attempts", d)
		}
	}
	if code := srv.Stop(t); code != 0 {
		t.Errorf("sparekey serve exited %d after SIGTERM, want 0", code)
	}
	rcv.checkExactlyOnce(t, all)

	// Secret hygiene: neither the whsec_ secret nor its key is in the database files (running
	// and stopped), the logs of both runs, or the audit events.
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	s := &secretList{t: t}
	s.addText("the webhook secret", secret)
	s.addText("the webhook secret's base64", strings.TrimPrefix(secret, "whsec_"))
	s.addBytes("the webhook key", key)
	sources := []source{
		{name: "the first run's output", data: []byte(firstOutput)},
		{name: "the second run's output", data: []byte(srv.Output())},
	}
	if !strings.Contains(firstOutput, "webhook: attempt failed; will retry") {
		t.Errorf("the first run logged no failed attempt; is the log captured?\n%s", firstOutput)
	}
	for _, dir := range []string{filepath.Dir(db.Path), snap} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Type().IsRegular() {
				b, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				sources = append(sources, source{name: filepath.Join(dir, e.Name()), data: b})
			}
		}
	}
	srv = startServer(t, serverOptions{DB: db.URL, Env: db.Env, Args: args, ProjectID: p.ID, Dir: dir})
	events := srv.Client(p).ok(t, http.MethodGet, "/sparekey/v1/events?limit=1000", nil)
	list := srv.Client(p).ok(t, http.MethodGet, "/sparekey/v1/webhooks", nil)
	sources = append(sources, source{name: "the audit events", data: events.Raw}, source{name: "the webhook list", data: list.Raw})
	for _, src := range sources {
		for i, v := range s.values {
			if at := strings.Index(string(src.data), string(v)); at >= 0 {
				t.Errorf("%s holds %s in plain text at byte %d", src.name, s.labels[i], at)
			}
		}
	}
}

// Two replicas on one PostgreSQL, the actions spread over both: each event reaches the receiver
// exactly once, and the replicas' delivered counters add up to the number of events.
func TestWebhookTwoReplicasDeliverEachEventOnce(t *testing.T) {
	rs := startReplicas(t, 2, webhookFlags...)
	rcv := newWebhookReceiver(t)
	hookID, _ := registerWebhook(t, rs.Clients[0], rcv)

	orgID, memberID := webhookMember(t, rs.Clients[1], "Replicated")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := rs.Clients[i%2].call(http.MethodGet, "/v1/b2b/recovery_codes/"+orgID+"/"+memberID, nil)
			if err == nil && r.Status != http.StatusOK {
				err = fmt.Errorf("GET codes: HTTP %d %s", r.Status, r.Raw)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all := sentEventIDs(t, rs.Clients[0], hookID)
	if len(all) != 42 {
		t.Fatalf("%d events, want 42", len(all))
	}
	rcv.waitFor(t, "every event delivered", func(_, delivered map[string]int) bool {
		for _, id := range all {
			if delivered[id] == 0 {
				return false
			}
		}
		return true
	})
	// Stopping both waits for anything still in flight, so a late duplicate would show. The
	// burst may have left connections the client dialed but never used, which net/http's
	// Shutdown waits 5 s for: close them first.
	//
	// A replica counts a delivery once it has recorded it, a moment after the receiver answered:
	// wait for the counters to catch up with the receiver before reading them for good.
	var counts []float64
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		counts = counts[:0]
		for _, srv := range rs.Replicas {
			counts = append(counts, deliveredCounter(t, srv))
		}
		if counts[0]+counts[1] >= float64(len(all)) || time.Now().After(deadline) {
			break
		}
	}
	for _, c := range rs.Clients {
		c.http.CloseIdleConnections()
	}
	for _, srv := range rs.Replicas {
		if code := srv.Stop(t); code != 0 {
			t.Errorf("a replica exited %d after SIGTERM, want 0", code)
		}
	}
	rcv.checkExactlyOnce(t, all)
	if counts[0]+counts[1] != float64(len(all)) {
		t.Errorf("the replicas count %v deliveries, want %d in all", counts, len(all))
	}
	t.Logf("deliveries per replica: %v", counts)
	var pending int
	if err := queryPostgres(t, rs.DB).QueryRow(context.Background(),
		`SELECT count(*) FROM webhook_deliveries WHERE state <> 'delivered' OR attempts <> 1`).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending != 0 {
		t.Errorf("%d deliveries are not delivered in one attempt", pending)
	}
}

// deliveredCounter reads sparekey_webhook_deliveries_total{result="delivered"} from a replica.
func deliveredCounter(t *testing.T, srv *server) float64 {
	t.Helper()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, `sparekey_webhook_deliveries_total{result="delivered"} `); ok {
			var n float64
			fmt.Sscan(v, &n)
			return n
		}
	}
	t.Fatalf("no delivered counter in the metrics of %s", srv.URL)
	return 0
}

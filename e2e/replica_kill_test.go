package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestReplicaKilledUnderLoad SIGKILLs one of three replicas while clients drive member
// life cycles through all three, and then holds the database to what the clients were told:
// the survivors answered every request, before, during and after the kill; every request that
// got a 200 left its write behind; the killed replica's unanswered requests were applied whole
// or not at all; and no recovery code was accepted twice.
func TestReplicaKilledUnderLoad(t *testing.T) {
	rs := startReplicas(t, replicaCount, "--lock-threshold", "1000")
	run := &killRun{
		t:     t,
		rs:    rs,
		orgID: createOrganization(t, rs.Clients[0], "Replica kill"),
		hash:  bcryptHash(t, replicaPassword),
		stop:  make(chan struct{}),
	}
	everyReplica := []int{0, 1, 2}
	run.alive.Store(&everyReplica)

	members := make([][]*loadMember, loadWorkers)
	var wg sync.WaitGroup
	for w := range loadWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			members[w] = (&loadWorker{run: run, id: w}).work()
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(loadPatience):
		// A hang guard, not a timing assertion: the survivors' goroutine dumps (SIGQUIT) end
		// their output and the workers' pending requests.
		run.halt()
		for i, s := range rs.Replicas {
			if i != killedReplica {
				s.DumpGoroutines(t)
			}
		}
		<-finished
		t.Fatalf("the load did not finish within %v (killed: %v, acknowledged: %d, after the kill: %d)",
			loadPatience, run.killed.Load(), run.acked.Load(), run.ackedAfterKill.Load())
	}
	if !run.killed.Load() {
		t.Fatalf("replica %d was never killed (%d requests acknowledged)", killedReplica, run.acked.Load())
	}

	victim := rs.Replicas[killedReplica]
	select {
	case <-victim.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("replica %d did not exit within 10s of SIGKILL", killedReplica)
	}
	if ws, ok := victim.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("replica %d ended with %v, want death by SIGKILL", killedReplica, victim.cmd.ProcessState)
	}

	var all []*loadMember
	for _, ms := range members {
		all = append(all, ms...)
	}
	run.report(all)
	for _, r := range []int{0, 1} {
		if n := run.ackedAfterBy[r].Load(); n == 0 {
			t.Errorf("replica %d answered no request after replica %d was killed", r, killedReplica)
		}
	}
	if t.Failed() {
		return // the database checks below assume every request to a survivor was answered 200
	}
	checkThroughSurvivors(t, run, all)
	checkDatabase(t, run, all)
}

const (
	loadWorkers     = 6
	ackedBeforeKill = 150 // requests answered 200 before the kill is armed
	ackedAfterKill  = 150 // requests the survivors answer 200 after the kill, before the load stops
	killedReplica   = 2
	// loadPatience bounds a hang of the whole load (a few seconds on a quiet machine).
	loadPatience = 2 * time.Minute
	// killDelayMax is about what a replica takes to handle a recover, so the kill lands
	// anywhere in it.
	killDelayMax = 5 * time.Millisecond
)

// loadMember is what the clients know of one member: what the requests answered 200 did, and
// the one request whose outcome they do not know, after which the worker left the member alone.
type loadMember struct {
	Email     string
	ID        string   // "" until a create was answered 200
	HasTOTP   bool     // a TOTP create was answered 200
	Codes     []string // the unused codes as the answered requests left them
	Rotated   bool
	Recovers  []ackedRecover
	Unsettled *unsettledRequest
}

// ackedRecover is a recover answered 200.
type ackedRecover struct {
	Code, CodeID, SessionID, SessionToken string
	Replica                               int
}

// unsettledRequest is a request that got no answer (the killed replica's), or one that was not
// answered 200 (a failure of the test by itself).
type unsettledRequest struct {
	Op      string
	Replica int
	Outcome string // the transport error or the HTTP answer
	Code    string // recover: the code it presented
	IST     string // recover: the intermediate session token it presented
}

// killRun is the shared state of the load.
type killRun struct {
	t           *testing.T
	rs          *replicaSet
	orgID, hash string

	alive    atomic.Pointer[[]int] // the replicas the workers send to
	killed   atomic.Bool
	killOnce sync.Once
	stop     chan struct{}
	stopOnce sync.Once

	mu       sync.Mutex
	killedOp string // the request in flight to the victim when it was killed

	acked          atomic.Int64
	ackedAfterKill atomic.Int64
	ackedBy        [replicaCount]atomic.Int64
	ackedAfterBy   [replicaCount]atomic.Int64
	lostRequests   atomic.Int64
}

func (run *killRun) halt() { run.stopOnce.Do(func() { close(run.stop) }) }

func (run *killRun) stopped() bool {
	select {
	case <-run.stop:
		return true
	default:
		return false
	}
}

// shouldKill says whether a request of op to the victim triggers the kill. A recover is the
// request with the most to half-apply (code, IST, session, counter), so the kill waits for one;
// should none come, any request will do.
func (run *killRun) shouldKill(op string) bool {
	n := run.acked.Load()
	return n >= 2*ackedBeforeKill || (n >= ackedBeforeKill && op == opRecover)
}

// kill SIGKILLs the victim once its request of op has been written, after a random pause of up
// to killDelayMax: the request is then in flight, and the replica dies before, while or (rarely)
// after handling it, a different moment each run.
func (run *killRun) kill(op string) {
	run.killOnce.Do(func() {
		delay := rand.N(killDelayMax)
		go func() {
			time.Sleep(delay)
			run.mu.Lock()
			run.killedOp = fmt.Sprintf("%s written %v earlier", op, delay.Round(time.Microsecond))
			run.mu.Unlock()
			survivors := []int{0, 1}
			run.alive.Store(&survivors)
			run.killed.Store(true)
			if err := run.rs.Replicas[killedReplica].cmd.Process.Signal(syscall.SIGKILL); err != nil {
				run.t.Errorf("SIGKILL replica %d: %v", killedReplica, err)
			}
		}()
	})
}

func (run *killRun) ack(replica int) {
	run.acked.Add(1)
	run.ackedBy[replica].Add(1)
	if run.killed.Load() && replica != killedReplica {
		run.ackedAfterBy[replica].Add(1)
		if run.ackedAfterKill.Add(1) >= ackedAfterKill {
			run.halt()
		}
	}
}

func (run *killRun) report(all []*loadMember) {
	run.mu.Lock()
	op := run.killedOp
	run.mu.Unlock()
	lost := map[string]int{}
	recovers := 0
	for _, m := range all {
		recovers += len(m.Recovers)
		if u := m.Unsettled; u != nil {
			lost[fmt.Sprintf("%s on replica %d", u.Op, u.Replica)]++
		}
	}
	run.t.Logf("replica %d killed with a %s; 200s per replica (after the kill): 0: %d (%d), 1: %d (%d), 2: %d; %d members, %d recovers acknowledged; unanswered: %s",
		killedReplica, op, run.ackedBy[0].Load(), run.ackedAfterBy[0].Load(), run.ackedBy[1].Load(), run.ackedAfterBy[1].Load(),
		run.ackedBy[2].Load(), len(all), recovers, formatTally(lost))
}

// Operations of a member life cycle.
const (
	opCreate   = "create member"
	opPassword = "passwords migrate"
	opTOTP     = "totp create"
	opLogin    = "passwords authenticate"
	opRecover  = "recover"
	opRotate   = "rotate"
)

// loadWorker drives member life cycles one after another, each request to the next live
// replica in turn. A member belongs to one worker, so its requests never overlap and what the
// answered ones did is exactly known.
type loadWorker struct {
	run  *killRun
	id   int
	n    int // requests sent, for the round robin
	last int // the replica of the latest request
}

func (w *loadWorker) work() []*loadMember {
	var members []*loadMember
	for i := 0; !w.run.stopped(); i++ {
		m := &loadMember{Email: fmt.Sprintf("load-%d-%d@example.com", w.id, i)}
		members = append(members, m)
		w.lifeCycle(m)
	}
	return members
}

// lifeCycle: create, password, TOTP, two recovers, rotate, one more recover.
func (w *loadWorker) lifeCycle(m *loadMember) {
	org := w.run.orgID
	r, ok := w.step(m, opCreate, unsettledRequest{}, http.MethodPost, "/v1/b2b/organizations/"+org+"/members", map[string]any{"email_address": m.Email})
	if !ok {
		return
	}
	if m.ID, ok = w.str(r, opCreate, "member_id"); !ok {
		return
	}
	if _, ok = w.step(m, opPassword, unsettledRequest{}, http.MethodPost, "/v1/b2b/passwords/migrate", map[string]any{
		"organization_id": org, "email_address": m.Email, "hash": w.run.hash, "hash_type": "bcrypt",
	}); !ok {
		return
	}
	ref := map[string]any{"organization_id": org, "member_id": m.ID}
	if r, ok = w.step(m, opTOTP, unsettledRequest{}, http.MethodPost, "/v1/b2b/totp", ref); !ok {
		return
	}
	if m.Codes, ok = w.codes(r, opTOTP); !ok {
		return
	}
	m.HasTOTP = true
	for range 2 {
		if !w.recover(m) {
			return
		}
	}
	if r, ok = w.step(m, opRotate, unsettledRequest{}, http.MethodPost, "/v1/b2b/recovery_codes/rotate", ref); !ok {
		return
	}
	if m.Codes, ok = w.codes(r, opRotate); !ok {
		return
	}
	m.Rotated = true
	w.recover(m)
}

// recover logs in with the password and spends the member's first unused code.
func (w *loadWorker) recover(m *loadMember) bool {
	org := w.run.orgID
	r, ok := w.step(m, opLogin, unsettledRequest{}, http.MethodPost, "/v1/b2b/passwords/authenticate", passwordBody(org, m.Email, replicaPassword))
	if !ok {
		return false
	}
	ist, ok := w.str(r, opLogin, "intermediate_session_token")
	if !ok {
		return false
	}
	code := m.Codes[0]
	r, ok = w.step(m, opRecover, unsettledRequest{Code: code, IST: ist}, http.MethodPost, "/v1/b2b/recovery_codes/recover", recoverBody(org, m.ID, code, ist))
	if !ok {
		return false
	}
	rec := ackedRecover{Code: code, Replica: w.last}
	if rec.SessionID, ok = w.str(r, opRecover, "member_session", "member_session_id"); !ok {
		return false
	}
	if rec.SessionToken, ok = w.str(r, opRecover, "session_token"); !ok {
		return false
	}
	var err error
	if rec.CodeID, err = recoveryFactorCodeID(r); err != nil {
		w.run.t.Errorf("recover: %v", err)
		return false
	}
	if got, _ := r.Body["recovery_codes_remaining"].(json.Number); got.String() != strconv.Itoa(len(m.Codes)-1) {
		w.run.t.Errorf("recover of %s: recovery_codes_remaining %v, want %d: %s", m.ID, r.Body["recovery_codes_remaining"], len(m.Codes)-1, r.Raw)
	}
	m.Codes = m.Codes[1:]
	m.Recovers = append(m.Recovers, rec)
	return true
}

// step sends one request to the next live replica. It reports whether the request was answered
// 200; otherwise the member's state is no longer known and m.Unsettled says why. Only the killed
// replica may leave a request unanswered, and only once it has been killed: anything else is an
// error of the test.
func (w *loadWorker) step(m *loadMember, op string, u unsettledRequest, method, path string, body any) (apiResponse, bool) {
	run := w.run
	if run.stopped() {
		return apiResponse{}, false
	}
	alive := *run.alive.Load()
	w.n++
	replica := alive[(w.id+w.n)%len(alive)]
	ctx := context.Background()
	if replica == killedReplica && !run.killed.Load() && run.shouldKill(op) {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			WroteRequest: func(info httptrace.WroteRequestInfo) {
				if info.Err == nil {
					run.kill(op)
				}
			},
		})
	}
	w.last = replica
	r, err := run.rs.Clients[replica].callContext(ctx, method, path, body)
	if err != nil {
		u.Op, u.Replica, u.Outcome = op, replica, err.Error()
		m.Unsettled = &u
		if replica == killedReplica && run.killed.Load() {
			run.lostRequests.Add(1)
		} else {
			run.t.Errorf("%s for %s on replica %d, which was not killed: %v", op, m.Email, replica, err)
		}
		return r, false
	}
	if r.Status != http.StatusOK {
		u.Op, u.Replica, u.Outcome = op, replica, fmt.Sprintf("HTTP %d %s", r.Status, r.ErrorType())
		m.Unsettled = &u
		run.t.Errorf("%s for %s on replica %d: HTTP %d %s, want 200: %s", op, m.Email, replica, r.Status, r.ErrorType(), r.Raw)
		return r, false
	}
	run.ack(replica)
	return r, true
}

// str reads a non-empty string field of an answer; goroutines may use it.
func (w *loadWorker) str(r apiResponse, op string, keys ...string) (string, bool) {
	v, _ := r.field(keys...)
	s, _ := v.(string)
	if s == "" {
		w.run.t.Errorf("%s: %s is %#v, want a non-empty string: %s", op, strings.Join(keys, "."), v, r.Raw)
		return "", false
	}
	return s, true
}

// codes reads the ten recovery_codes of a TOTP create or rotate answer.
func (w *loadWorker) codes(r apiResponse, op string) ([]string, bool) {
	list, _ := r.Body["recovery_codes"].([]any)
	codes := make([]string, 0, len(list))
	for _, e := range list {
		if s, ok := e.(string); ok && s != "" {
			codes = append(codes, s)
		}
	}
	if len(codes) != 10 || len(list) != 10 {
		w.run.t.Errorf("%s: recovery_codes is %#v, want 10 codes: %s", op, r.Body["recovery_codes"], r.Raw)
		return nil, false
	}
	return codes, true
}

// recoveryFactorCodeID is the totp_recovery_code_id of the recovery_codes factor of a recover
// answer's member_session (§6.1).
func recoveryFactorCodeID(r apiResponse) (string, error) {
	v, _ := r.field("member_session", "authentication_factors")
	factors, _ := v.([]any)
	var ids []string
	for _, f := range factors {
		fm, _ := f.(map[string]any)
		if fm["type"] != "recovery_codes" {
			continue
		}
		rc, _ := fm["recovery_code_factor"].(map[string]any)
		id, _ := rc["totp_recovery_code_id"].(string)
		ids = append(ids, id)
	}
	if len(ids) != 1 || !strings.HasPrefix(ids[0], "member-totp-recovery-code-test-") {
		return "", fmt.Errorf("member_session carries the recovery code ids %q, want one member-totp-recovery-code-test-<uuid>: %s", ids, r.Raw)
	}
	return ids[0], nil
}

// checkThroughSurvivors asks the surviving replicas, in turn, for what every answered request
// wrote, and settles the killed replica's unanswered recovers through the API.
func checkThroughSurvivors(t *testing.T, run *killRun, all []*loadMember) {
	org := run.orgID
	settled := map[string]int{}
	defer func() {
		if len(settled) > 0 {
			t.Logf("unanswered recovers: %s", formatTally(settled))
		}
	}()
	turn := 0
	survivor := func() (*apiClient, int) {
		turn++
		return run.rs.Clients[turn%2], turn % 2
	}
	for _, m := range all {
		if m.ID == "" {
			continue // its create was never answered 200: it may or may not exist
		}
		c, on := survivor()
		got := c.do(t, http.MethodGet, "/v1/b2b/organizations/"+org+"/member?"+url.Values{"member_id": {m.ID}}.Encode(), nil)
		if got.Status != http.StatusOK {
			t.Errorf("GET member %s (created with a 200) on replica %d: HTTP %d %s, want 200: %s", m.ID, on, got.Status, got.ErrorType(), got.Raw)
			continue
		}
		if m.HasTOTP && got.Str(t, "member", "totp_registration_id") == "" {
			t.Errorf("GET member %s on replica %d: no totp_registration_id after a TOTP create answered 200: %s", m.ID, on, got.Raw)
		}
		u := m.Unsettled
		c, on = survivor()
		r := c.do(t, http.MethodGet, "/v1/b2b/recovery_codes/"+org+"/"+m.ID, nil)
		if !m.HasTOTP {
			if u != nil && u.Op == opTOTP && r.Status == http.StatusOK && len(r.Strings(t, "recovery_codes")) == 10 {
				continue // the unanswered TOTP create was applied, whole
			}
			if r.Status != http.StatusBadRequest || r.ErrorType() != "no_active_recovery_code_backed_factor" {
				t.Errorf("GET recovery codes of %s (no TOTP create answered 200, unsettled: %+v) on replica %d: HTTP %d %s, want 400 no_active_recovery_code_backed_factor: %s",
					m.ID, u, on, r.Status, r.ErrorType(), r.Raw)
			}
			continue
		}
		if r.Status != http.StatusOK {
			t.Errorf("GET recovery codes of %s on replica %d: HTTP %d %s, want 200: %s", m.ID, on, r.Status, r.ErrorType(), r.Raw)
			continue
		}
		codes := r.Strings(t, "recovery_codes")
		for _, rec := range m.Recovers {
			if slices.Contains(codes, rec.Code) {
				t.Errorf("GET recovery codes of %s on replica %d still lists the code recovered with a 200 on replica %d: %q", m.ID, on, rec.Replica, codes)
			}
		}
		switch {
		case u != nil && u.Op == opRecover:
			settled[settleLostRecover(t, run, m, codes)]++
		case u != nil && u.Op == opRotate:
			disjoint := !slices.ContainsFunc(codes, func(s string) bool { return slices.Contains(m.Codes, s) })
			if !slices.Equal(codes, m.Codes) && (len(codes) != 10 || !disjoint) {
				t.Errorf("GET recovery codes of %s after an unanswered rotate = %q, want the set before it %q or 10 new codes", m.ID, codes, m.Codes)
			}
		default:
			// Every request on the codes was answered: the last rotate's set (or the TOTP
			// create's) without the codes recovered since.
			if !slices.Equal(codes, m.Codes) {
				t.Errorf("GET recovery codes of %s on replica %d = %q, want %q (rotated: %v, %d recovers answered 200)", m.ID, on, codes, m.Codes, m.Rotated, len(m.Recovers))
			}
		}

		if len(m.Recovers) == 0 {
			continue
		}
		c, on = survivor()
		live := sessionIDs(t, c, org, m.ID)
		for _, rec := range m.Recovers {
			if !slices.Contains(live, rec.SessionID) {
				t.Errorf("GET sessions of %s on replica %d = %q, missing %s of a recover answered 200 on replica %d", m.ID, on, live, rec.SessionID, rec.Replica)
			}
			c, on = survivor()
			a := c.do(t, http.MethodPost, "/v1/b2b/sessions/authenticate", map[string]any{"session_token": rec.SessionToken})
			if a.Status != http.StatusOK || a.Str(t, "member_session", "member_session_id") != rec.SessionID {
				t.Errorf("sessions/authenticate on replica %d with the token of %s (recover answered 200 on replica %d): HTTP %d %s, want 200 with that session: %s",
					on, rec.SessionID, rec.Replica, a.Status, a.ErrorType(), a.Raw)
			}
		}
	}
}

// settleLostRecover decides through the API what became of an unanswered recover: either the
// code is spent and the IST consumed (the session then exists: checkDatabase), or neither, and
// the IST still opens a session with that very code.
func settleLostRecover(t *testing.T, run *killRun, m *loadMember, codes []string) (outcome string) {
	u := m.Unsettled
	c := run.rs.Clients[0]
	const path = "/v1/b2b/recovery_codes/recover"
	switch {
	case slices.Equal(codes, m.Codes):
		outcome = "not applied"
		r := c.do(t, http.MethodPost, path, recoverBody(run.orgID, m.ID, u.Code, u.IST))
		if r.Status != http.StatusOK {
			t.Errorf("the unanswered recover of %s (%s on replica %d) did not spend its code, but its IST and code then fail on replica 0: HTTP %d %s, want 200 (a half-applied request): %s",
				m.ID, u.Outcome, u.Replica, r.Status, r.ErrorType(), r.Raw)
		}
	case slices.Equal(codes, m.Codes[1:]) && m.Codes[0] == u.Code:
		outcome = "applied"
		if len(codes) == 0 {
			return outcome // no code left to try the IST with; checkDatabase pairs the spent code with its session
		}
		r := c.do(t, http.MethodPost, path, recoverBody(run.orgID, m.ID, codes[0], u.IST))
		if r.Status != http.StatusNotFound || r.ErrorType() != "intermediate_session_not_found" {
			t.Errorf("the unanswered recover of %s (%s on replica %d) spent its code, but its IST still works on replica 0: HTTP %d %s, want 404 intermediate_session_not_found (a half-applied request): %s",
				m.ID, u.Outcome, u.Replica, r.Status, r.ErrorType(), r.Raw)
		}
	default:
		outcome = "neither"
		t.Errorf("GET recovery codes of %s after an unanswered recover of %q = %q, want %q (not applied) or %q (applied)", m.ID, u.Code, codes, m.Codes, m.Codes[1:])
	}
	return outcome
}

// checkDatabase holds the tables to the single-use guarantee over the whole run, the killed
// replica's unanswered requests included: every spent code belongs to exactly one session of
// its member, no session names a code that is unspent, no two sessions name one code (rotated
// away or not), and the sessions are those of the answered recovers plus at most the
// unanswered ones.
func checkDatabase(t *testing.T, run *killRun, all []*loadMember) {
	ctx := context.Background()
	conn := queryPostgres(t, run.rs.DB)

	type codeRow struct {
		member string
		used   bool
	}
	codeRows := map[string]codeRow{}
	rows, err := conn.Query(ctx, `SELECT 'member-totp-recovery-code-test-' || c.id::text, r.member_id, c.used_at IS NOT NULL
		FROM recovery_codes c JOIN totp_registrations r ON r.pk = c.registration_pk`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var row codeRow
		if err := rows.Scan(&id, &row.member, &row.used); err != nil {
			t.Fatal(err)
		}
		codeRows[id] = row
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	type naming struct{ session, member string }
	named := map[string][]naming{} // code id → the sessions whose factors name it
	rows, err = conn.Query(ctx, `SELECT s.id, s.member_id, f->'recovery_code_factor'->>'totp_recovery_code_id'
		FROM sessions s CROSS JOIN LATERAL jsonb_array_elements(s.factors) AS f
		WHERE f ? 'recovery_code_factor'`)
	if err != nil {
		t.Fatal(err)
	}
	recoverySessions := 0
	for rows.Next() {
		var n naming
		var codeID string
		if err := rows.Scan(&n.session, &n.member, &codeID); err != nil {
			t.Fatal(err)
		}
		named[codeID] = append(named[codeID], n)
		recoverySessions++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var sessions, members int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM members)`).Scan(&sessions, &members); err != nil {
		t.Fatal(err)
	}

	spent := 0
	for id, row := range codeRows {
		if !row.used {
			continue
		}
		spent++
		if ns := named[id]; len(ns) != 1 || ns[0].member != row.member {
			t.Errorf("recovery code %s of %s is marked used, but the sessions naming it are %+v, want exactly one of that member (a code spent without its session)", id, row.member, ns)
		}
	}
	ids := make([]string, 0, len(named))
	for id := range named {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ns := named[id]
		if len(ns) > 1 {
			t.Errorf("recovery code %s was accepted %d times: the sessions %+v all name it", id, len(ns), ns)
		}
		if row, ok := codeRows[id]; ok && (!row.used || row.member != ns[0].member) {
			t.Errorf("session %s of %s names recovery code %s, which is %+v (a session whose code was not spent)", ns[0].session, ns[0].member, id, row)
		}
	}

	acked, unsettledRecovers, ackedMembers, unsettledCreates := 0, 0, 0, 0
	seen := map[string]bool{}
	for _, m := range all {
		if m.ID != "" {
			ackedMembers++
		}
		if m.Unsettled != nil && m.Unsettled.Op == opRecover {
			unsettledRecovers++
		}
		if m.Unsettled != nil && m.Unsettled.Op == opCreate {
			unsettledCreates++
		}
		for _, rec := range m.Recovers {
			acked++
			if seen[rec.CodeID] {
				t.Errorf("recovery code %s was answered 200 twice", rec.CodeID)
			}
			seen[rec.CodeID] = true
			if ns := named[rec.CodeID]; len(ns) != 1 || ns[0].session != rec.SessionID || ns[0].member != m.ID {
				t.Errorf("the recover of code %s answered 200 on replica %d with session %s: the sessions naming it are %+v", rec.CodeID, rec.Replica, rec.SessionID, ns)
			}
		}
	}
	if recoverySessions < acked || recoverySessions > acked+unsettledRecovers || sessions != recoverySessions {
		t.Errorf("the database holds %d sessions, %d of them from a recovery code; want the %d of the recovers answered 200, plus at most the %d unanswered ones, and no other",
			sessions, recoverySessions, acked, unsettledRecovers)
	}
	if members < ackedMembers || members > ackedMembers+unsettledCreates {
		t.Errorf("the database holds %d members; want the %d whose create was answered 200, plus at most the %d unanswered creates", members, ackedMembers, unsettledCreates)
	}
	t.Logf("database: %d members, %d codes (%d spent), %d sessions; %d recovers answered 200, %d unanswered",
		members, len(codeRows), spent, sessions, acked, unsettledRecovers)
}

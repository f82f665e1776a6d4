package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/totp"
)

// TestChaosKill is the chaos test of the single-use and atomicity guarantees. Workers drive
// recovers, rotates, TOTP logins and GETs against one `sparekey serve` on one database; at a
// random moment the server gets SIGKILL (no shutdown, requests in flight), and it is restarted on
// the same database for the next round, at least 20 times. Afterwards a last server and the
// database itself are held to what the clients were told: no code was accepted twice, no rotate
// is half applied, every session has its consumed code and its event, every answered session
// still works, and the database passes its integrity check. Requests in flight at a kill have
// an unknown outcome: the checks allow them to have acted whole or not at all, never in part.
func TestChaosKill(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		db := newSQLite(t)
		runChaos(t, db, chaosBackend{
			codeRows:  chaosSQLiteCodeRows,
			integrity: chaosSQLiteIntegrity,
		})
	})
	t.Run("postgres", func(t *testing.T) {
		db := newPostgres(t)
		migratePostgres(t, db)
		runChaos(t, db, chaosBackend{
			serveArgs: []string{"--db-max-conns", replicaPoolSize},
			codeRows:  chaosPostgresCodeRows,
			integrity: chaosPostgresIntegrity,
		})
	})
}

const (
	chaosMembers = 12
	chaosWorkers = 6
	chaosRounds  = 24
	// The kill lands this long after the server is ready (and, in round 1, set up): long enough
	// for dozens of requests, short enough that 24 rounds stay within seconds.
	chaosKillAfterMin = 50 * time.Millisecond
	chaosKillAfterMax = 400 * time.Millisecond
	// chaosPatience bounds a hang of a round's workers after the kill; they only wait for
	// requests to a dead process to fail.
	chaosPatience = 30 * time.Second
	// Failures are part of the load (replays, lost races); no member may ever lock.
	chaosLockThreshold = "1000000"
	chaosPassword      = "chaos is a ladder"
)

// chaosBackend is what differs between the databases: extra serve flags and the two reads of
// the database itself once the last server has stopped.
type chaosBackend struct {
	serveArgs []string
	codeRows  func(t *testing.T, db database) []chaosCodeRow
	integrity func(t *testing.T, db database) error
}

// Operations, as recorded.
const (
	chaosLogin   = "passwords authenticate"
	chaosRecover = "recover"
	chaosReplay  = "recover with a spent code"
	chaosRotate  = "rotate"
	chaosTOTP    = "totp authenticate"
	chaosGet     = "get"
)

// chaosOutcome is what the client knows of a request.
type chaosOutcome string

const (
	chaosAnswered chaosOutcome = "answered"
	// The request was written whole but no answer came: the kill came first. It may have acted.
	chaosUnknown chaosOutcome = "unknown outcome"
	// The request was never written whole (the server was already dead): it cannot have acted.
	chaosUnsent chaosOutcome = "not sent"
)

// chaosRequest is one request of the run and what came of it.
type chaosRequest struct {
	Round, Worker int // Worker -1: the checks after the last round
	Op            string
	Member        *chaosMember
	Code          string // recover: the recovery code sent; TOTP: the TOTP code sent
	Step          int64  // TOTP: the step Code belongs to
	// Sent and Done order requests on one logical clock: Sent is taken before the request is
	// written, Done after its answer (or failure) arrived.
	Sent, Done int64
	Outcome    chaosOutcome
	Err        string // the transport error of an unanswered request

	Status    int
	ErrorType string
	RequestID string
	Raw       []byte

	// Read from a 200: the session (recover, TOTP), the code it spent (recover), the codes
	// shown (GET, rotate).
	SessionID, SessionToken, CodeID string
	Codes                           []string
}

func (r *chaosRequest) String() string {
	who := fmt.Sprintf("round %d worker %d", r.Round, r.Worker)
	if r.Worker < 0 {
		who = "final check"
	}
	s := fmt.Sprintf("[%s: %s of member %d", who, r.Op, r.Member.Index)
	if r.Code != "" {
		s += fmt.Sprintf(" with %q", r.Code)
	}
	switch r.Outcome {
	case chaosAnswered:
		s += fmt.Sprintf(" → HTTP %d %s %s", r.Status, r.ErrorType, r.RequestID)
		if r.SessionID != "" {
			s += " session " + r.SessionID
		}
		if r.CodeID != "" {
			s += " code " + r.CodeID
		}
	default:
		s += fmt.Sprintf(" → %s (%s)", r.Outcome, r.Err)
	}
	return s + fmt.Sprintf(", clock %d..%d]", r.Sent, r.Done)
}

// chaosMember is one member and what the workers believe of its codes. The belief only steers
// which code a worker sends; the checks judge from the recorded requests.
type chaosMember struct {
	Index                    int
	ID, Email, RegID, Secret string
	Initial                  []string // the set TOTP create issued
	Enrolled                 int64    // the clock when TOTP create was answered

	mu    sync.Mutex
	sets  [][]string      // the sets answered so far, latest last
	dead  map[string]bool // codes answered 200 or 401: no use sending them as unused
	spent []string        // codes answered 200
}

// pickCode chooses a recovery code to send: with replay, one this member already spent (the
// answer must be 401); otherwise an unused code of the latest set the workers know, usually
// the first one, so concurrent workers race for the same code. "" means none is left.
func (m *chaosMember) pickCode(replay bool) (code string, isReplay bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if replay && len(m.spent) > 0 {
		return m.spent[rand.IntN(len(m.spent))], true
	}
	var unused []string
	for _, c := range m.sets[len(m.sets)-1] {
		if !m.dead[c] {
			unused = append(unused, c)
		}
	}
	switch {
	case len(unused) == 0:
		return "", false
	case rand.IntN(10) < 7:
		return unused[0], false
	default:
		return unused[rand.IntN(len(unused))], false
	}
}

// chaosRun is the shared state of one backend's run.
type chaosRun struct {
	t       *testing.T
	db      database
	backend chaosBackend
	proj    project
	orgID   string
	hash    string
	members []*chaosMember

	clock atomic.Int64

	mu       sync.Mutex
	requests []*chaosRequest
	// deaths[r] is the clock after round r's server was dead: whatever a request of round r
	// without an answer did, it did before then.
	deaths map[int]int64
	kills  int
}

// chaosRound is one server's life.
type chaosRound struct {
	n      int
	c      *apiClient
	killed atomic.Bool
}

func runChaos(t *testing.T, db database, backend chaosBackend) {
	began := time.Now()
	run := &chaosRun{
		t:       t,
		db:      db,
		backend: backend,
		proj:    createProject(t, db.URL, db.Env),
		hash:    bcryptHash(t, chaosPassword),
		deaths:  map[int]int64{},
	}
	args := append([]string{"--lock-threshold", chaosLockThreshold}, backend.serveArgs...)
	for n := 1; n <= chaosRounds; n++ {
		srv := startServer(t, serverOptions{DB: db.URL, Env: db.Env, Args: args, ProjectID: run.proj.ID})
		c := srv.Client(run.proj)
		if n == 1 {
			run.setUp(c)
		}
		run.round(n, srv, c)
		if t.Failed() {
			break // the rounds after a failure would only bury it
		}
	}
	loadTook := time.Since(began)

	srv := startServer(t, serverOptions{DB: db.URL, Env: db.Env, Args: args, ProjectID: run.proj.ID})
	final := run.collect(srv)
	if code := srv.Stop(t); code != 0 {
		t.Errorf("the last server exited %d after SIGTERM, want 0", code)
	}
	final.rows = backend.codeRows(t, db)
	if err := backend.integrity(t, db); err != nil {
		t.Errorf("the database fails its integrity check after %d kills: %v", run.kills, err)
	}
	run.check(final)
	run.report(loadTook, time.Since(began))
}

// setUp creates the organization and the members, each with the password and TOTP.
func (run *chaosRun) setUp(c *apiClient) {
	t := run.t
	run.orgID = createOrganization(t, c, "Chaos")
	for i := range chaosMembers {
		m := &chaosMember{Index: i, Email: fmt.Sprintf("chaos-%d@example.com", i), dead: map[string]bool{}}
		m.ID = createMember(t, c, run.orgID, m.Email)
		migratePassword(t, c, run.orgID, m.Email, run.hash)
		r := totpCreate(t, c, run.orgID, m.ID)
		m.RegID = r.Str(t, "totp_registration_id")
		m.Secret = r.Str(t, "secret")
		m.Initial = r.Strings(t, "recovery_codes")
		m.sets = [][]string{m.Initial}
		m.Enrolled = run.clock.Add(1)
		run.members = append(run.members, m)
	}
}

// round runs the workers against srv until it is killed, and waits for them.
func (run *chaosRun) round(n int, srv *server, c *apiClient) {
	t := run.t
	rd := &chaosRound{n: n, c: c}
	var wg sync.WaitGroup
	for w := range chaosWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !rd.killed.Load() {
				run.step(rd, w)
			}
		}()
	}
	time.Sleep(chaosKillAfterMin + rand.N(chaosKillAfterMax-chaosKillAfterMin))
	select {
	case <-srv.exited:
		t.Errorf("round %d: the server exited on its own (%v) before the kill", n, srv.exitErr)
	default:
	}
	// Marked before the signal, so a worker that sees a request fail while unmarked has found
	// a server that stopped answering by itself.
	rd.killed.Store(true)
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Errorf("round %d: SIGKILL: %v", n, err)
	}
	select {
	case <-srv.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("round %d: the server did not die within 10s of SIGKILL", n)
	}
	if ws, ok := srv.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("round %d: the server ended with %v, want death by SIGKILL", n, srv.cmd.ProcessState)
	}
	death := run.clock.Add(1)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(chaosPatience):
		t.Fatalf("round %d: the workers did not finish within %v of the kill", n, chaosPatience)
	}
	c.http.CloseIdleConnections()
	run.mu.Lock()
	run.deaths[n] = death
	run.kills++
	run.mu.Unlock()
}

// step runs one operation on a random member.
func (run *chaosRun) step(rd *chaosRound, w int) {
	m := run.members[rand.IntN(len(run.members))]
	switch p := rand.IntN(100); {
	case p < 45:
		run.recover(rd, w, m, false)
	case p < 52:
		run.recover(rd, w, m, true)
	case p < 65:
		run.rotate(rd, w, m)
	case p < 85:
		run.totp(rd, w, m)
	default:
		run.get(rd, w, m)
	}
}

// send makes one request and records it. Unanswered requests are expected only once the round's
// server has been killed; then they are unknown outcomes or, when not even written, unsent.
func (run *chaosRun) send(rd *chaosRound, w int, req *chaosRequest, method, path string, body any) *chaosRequest {
	var wrote atomic.Bool
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.Store(true)
			}
		},
	})
	req.Round, req.Worker = rd.n, w
	req.Sent = run.clock.Add(1)
	resp, err := rd.c.callContext(ctx, method, path, body)
	req.Done = run.clock.Add(1)
	switch {
	case err == nil:
		req.Outcome = chaosAnswered
		req.Status, req.ErrorType, req.Raw = resp.Status, resp.ErrorType(), resp.Raw
		req.RequestID, _ = resp.Body["request_id"].(string)
	case wrote.Load():
		req.Outcome, req.Err = chaosUnknown, err.Error()
	default:
		req.Outcome, req.Err = chaosUnsent, err.Error()
	}
	if err != nil && !rd.killed.Load() {
		run.t.Errorf("%v: failed while the server was not killed", req)
	}
	if req.Outcome == chaosAnswered {
		run.parse(req, resp)
	}
	run.mu.Lock()
	run.requests = append(run.requests, req)
	run.mu.Unlock()
	return req
}

// parse reads what a 200 carries and reports answers the load never expects.
func (run *chaosRun) parse(req *chaosRequest, r apiResponse) {
	t := run.t
	switch {
	case req.Status == http.StatusOK:
	case req.Op == chaosRecover && req.Status == http.StatusUnauthorized && req.ErrorType == "unable_to_authenticate_recovery_code":
		return // a lost race, or a code spent by an unanswered request or a rotate
	case req.Op == chaosReplay && req.Status == http.StatusUnauthorized && req.ErrorType == "unable_to_authenticate_recovery_code":
		return
	case req.Op == chaosTOTP && req.Status == http.StatusBadRequest && req.ErrorType == "totp_code_already_authenticated":
		return // each step is accepted once per registration
	default:
		t.Errorf("%v: unexpected answer: %s", req, req.Raw)
		return
	}
	var err error
	switch req.Op {
	case chaosRecover, chaosReplay, chaosTOTP:
		req.SessionID, _ = r.Body["member_session"].(map[string]any)["member_session_id"].(string)
		req.SessionToken, _ = r.Body["session_token"].(string)
		if req.SessionID == "" || req.SessionToken == "" {
			t.Errorf("%v: a 200 without member_session_id or session_token: %s", req, req.Raw)
		}
		if req.Op != chaosTOTP {
			req.CodeID, err = recoveryFactorCodeID(r)
		}
	case chaosRotate, chaosGet:
		req.Codes, err = chaosCodeList(r, req.Op == chaosRotate)
	}
	if err != nil {
		t.Errorf("%v: %v", req, err)
	}
}

// chaosCodeList reads recovery_codes: exactly ten distinct codes when issued, at most ten when
// shown by GET.
func chaosCodeList(r apiResponse, issued bool) ([]string, error) {
	list, ok := r.Body["recovery_codes"].([]any)
	if !ok {
		return nil, fmt.Errorf("recovery_codes is %#v, want an array: %s", r.Body["recovery_codes"], r.Raw)
	}
	codes := make([]string, 0, len(list))
	seen := map[string]bool{}
	for _, e := range list {
		s, _ := e.(string)
		if s == "" || seen[s] {
			return nil, fmt.Errorf("recovery_codes holds %#v (empty, not a string, or repeated): %s", e, r.Raw)
		}
		seen[s] = true
		codes = append(codes, s)
	}
	if (issued && len(codes) != 10) || len(codes) > 10 {
		return nil, fmt.Errorf("recovery_codes holds %d codes, want %s: %s", len(codes), map[bool]string{true: "10", false: "at most 10"}[issued], r.Raw)
	}
	return codes, nil
}

// login is the password step; it returns an intermediate session token when answered 200.
func (run *chaosRun) login(rd *chaosRound, w int, m *chaosMember) (string, bool) {
	req := run.send(rd, w, &chaosRequest{Op: chaosLogin, Member: m}, http.MethodPost, "/v1/b2b/passwords/authenticate", passwordBody(run.orgID, m.Email, chaosPassword))
	if req.Outcome != chaosAnswered {
		return "", false
	}
	var body struct {
		IST string `json:"intermediate_session_token"`
	}
	if req.Status != http.StatusOK {
		return "", false // parse reported it
	}
	if chaosDecode(req.Raw, &body) != nil || body.IST == "" {
		run.t.Errorf("%v: want an intermediate_session_token: %s", req, req.Raw)
		return "", false
	}
	return body.IST, true
}

func (run *chaosRun) recover(rd *chaosRound, w int, m *chaosMember, replay bool) {
	ist, ok := run.login(rd, w, m)
	if !ok {
		return
	}
	code, isReplay := m.pickCode(replay)
	if code == "" {
		run.rotate(rd, w, m)
		return
	}
	op := chaosRecover
	if isReplay {
		op = chaosReplay
	}
	req := run.send(rd, w, &chaosRequest{Op: op, Member: m, Code: code}, http.MethodPost, "/v1/b2b/recovery_codes/recover", recoverBody(run.orgID, m.ID, code, ist))
	if req.Outcome != chaosAnswered {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch req.Status {
	case http.StatusOK:
		m.dead[code] = true
		m.spent = append(m.spent, code)
	case http.StatusUnauthorized:
		m.dead[code] = true
	}
}

func (run *chaosRun) rotate(rd *chaosRound, w int, m *chaosMember) {
	req := run.send(rd, w, &chaosRequest{Op: chaosRotate, Member: m}, http.MethodPost, "/v1/b2b/recovery_codes/rotate",
		map[string]any{"organization_id": run.orgID, "member_id": m.ID})
	if req.Outcome == chaosAnswered && len(req.Codes) == 10 {
		m.mu.Lock()
		m.sets = append(m.sets, req.Codes)
		m.mu.Unlock()
	}
}

func (run *chaosRun) totp(rd *chaosRound, w int, m *chaosMember) {
	ist, ok := run.login(rd, w, m)
	if !ok {
		return
	}
	step := totp.Step(time.Now())
	code, err := totp.Code(m.Secret, step)
	if err != nil {
		run.t.Errorf("totp.Code for member %d: %v", m.Index, err)
		return
	}
	run.send(rd, w, &chaosRequest{Op: chaosTOTP, Member: m, Code: code, Step: step}, http.MethodPost, "/v1/b2b/totp/authenticate", map[string]any{
		"organization_id":            run.orgID,
		"member_id":                  m.ID,
		"code":                       code,
		"intermediate_session_token": ist,
	})
}

func (run *chaosRun) get(rd *chaosRound, w int, m *chaosMember) *chaosRequest {
	return run.send(rd, w, &chaosRequest{Op: chaosGet, Member: m}, http.MethodGet, "/v1/b2b/recovery_codes/"+run.orgID+"/"+m.ID, nil)
}

// report logs the totals of the run.
func (run *chaosRun) report(loadTook, took time.Duration) {
	tally := map[string]int{}
	answered, unknown, unsent := 0, 0, 0
	for _, r := range run.requests {
		switch r.Outcome {
		case chaosAnswered:
			answered++
			key := fmt.Sprintf("%s %d", r.Op, r.Status)
			if r.ErrorType != "" {
				key += " " + r.ErrorType
			}
			tally[key]++
		case chaosUnknown:
			unknown++
			tally[r.Op+" unknown outcome"]++
		default:
			unsent++
		}
	}
	keys := make([]string, 0, len(tally))
	for k := range tally {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = fmt.Sprintf("  %5d × %s", tally[k], k)
	}
	run.t.Logf("%d rounds, each ended by SIGKILL; %d requests answered, %d unknown outcomes, %d not sent; load %v, whole run %v\n%s",
		run.kills, answered, unknown, unsent, loadTook.Round(time.Millisecond), took.Round(time.Millisecond), strings.Join(lines, "\n"))
}

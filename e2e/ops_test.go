package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/store/sqlite"
)

// opsEnrolled is a member of a REQUIRED_FOR_ALL organization with a password and ten codes.
type opsEnrolled struct {
	OrgID, ID, Email string
	Codes            []string
}

const opsPassword = "correct horse battery staple"

// opsEnrollMembers creates n members of orgID, each with the password and a TOTP registration.
func opsEnrollMembers(t *testing.T, c *apiClient, orgID, prefix string, n int) []opsEnrolled {
	t.Helper()
	hash := bcryptHash(t, opsPassword)
	out := make([]opsEnrolled, n)
	for i := range out {
		m := opsEnrolled{OrgID: orgID, Email: fmt.Sprintf("%s-%d@example.com", prefix, i)}
		m.ID = createMember(t, c, orgID, m.Email)
		migratePassword(t, c, orgID, m.Email, hash)
		m.Codes = totpCreate(t, c, orgID, m.ID).Strings(t, "recovery_codes")
		out[i] = m
	}
	return out
}

// opsSessions lists the member's live session ids.
func opsSessions(t *testing.T, c *apiClient, m opsEnrolled) []string {
	t.Helper()
	r := c.ok(t, http.MethodGet, "/v1/b2b/sessions?organization_id="+m.OrgID+"&member_id="+m.ID, nil)
	list, _ := r.Body["member_sessions"].([]any)
	var ids []string
	for _, s := range list {
		id, _ := s.(map[string]any)["member_session_id"].(string)
		ids = append(ids, id)
	}
	return ids
}

// opsIntegrity opens a SQLite file read-only and runs SQLite's integrity and foreign-key checks
// and the schema check.
func opsIntegrity(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.IntegrityCheck(ctx); err != nil {
		t.Errorf("%s: %v", path, err)
	}
	if err := db.CheckSchema(ctx); err != nil {
		t.Errorf("%s: %v", path, err)
	}
}

// opsRecoverOutcome is what one recover of the burst got.
type opsRecoverOutcome struct {
	member, code int
	status       int // 0: no HTTP answer
	err          error
	sessionID    string
	requestID    string
}

// TestShutdownDuringRecoverBurst sends SIGTERM while recovers are in flight, each with its own
// intermediate session and a distinct code, across several members. Every request the server
// acknowledged with 200 must have spent its code and created its session, as seen by a server
// restarted on the same database; no code may be spent without its session (or the reverse);
// every spent code must have reached its caller as a 200 (an accepted request is answered, not
// dropped); the requests in flight when the signal came are finished and answered; and the
// process exits 0 within --shutdown-timeout.
func TestShutdownDuringRecoverBurst(t *testing.T) {
	const (
		members = 10 // × 10 codes: 100 recovers
		workers = 16
		signal  = 8 // send SIGTERM once a third has been answered and this many are in flight
	)
	db := newSQLite(t)
	p := createProject(t, db.URL, db.Env)
	args := []string{"--lock-threshold", "1000", "--shutdown-timeout", "4s"} // the harness kills after 5s
	srv := startServer(t, serverOptions{DB: db.URL, Env: db.Env, Args: args, ProjectID: p.ID})
	c := srv.Client(p)
	orgID := createOrganization(t, c, "Shutdown")
	ms := opsEnrollMembers(t, c, orgID, "burst", members)

	var jobs []opsRecoverOutcome
	ists := map[[2]int]string{}
	for i, m := range ms {
		for j, ist := range intermediateSessions(t, srv, c, orgID, m.Email, opsPassword, len(m.Codes)) {
			ists[[2]int{i, j}] = ist
			jobs = append(jobs, opsRecoverOutcome{member: i, code: j})
		}
	}

	var (
		next, inFlight, answered atomic.Int64
		wg                       sync.WaitGroup
		signalled                = make(chan int, 1) // the exit code
		signalOnce               sync.Once
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= len(jobs) {
					return
				}
				job := &jobs[k]
				m := ms[job.member]
				if inFlight.Add(1) >= signal && answered.Load() >= int64(len(jobs)/3) {
					signalOnce.Do(func() { go func() { signalled <- srv.Stop(t) }() })
				}
				r, err := c.call(http.MethodPost, "/v1/b2b/recovery_codes/recover", recoverBody(orgID, m.ID, m.Codes[job.code], ists[[2]int{job.member, job.code}]))
				inFlight.Add(-1)
				answered.Add(1)
				job.status, job.err = r.Status, err
				if err == nil && r.Status == http.StatusOK {
					job.sessionID, _ = r.Body["member_session"].(map[string]any)["member_session_id"].(string)
					job.requestID, _ = r.Body["request_id"].(string)
				}
			}
		}()
	}
	wg.Wait()
	signalOnce.Do(func() { go func() { signalled <- srv.Stop(t) }() }) // the burst never reached the signal
	if code := <-signalled; code != 0 {
		t.Errorf("sparekey exited %d after SIGTERM, want 0 (every in-flight request finished within --shutdown-timeout)", code)
	}

	tally := map[string]int{}
	acked := map[string]bool{} // request ids answered 200
	for _, j := range jobs {
		switch {
		case j.err != nil:
			tally["no answer"]++
		default:
			tally[fmt.Sprint(j.status)]++
		}
		if j.status == http.StatusOK {
			acked[j.requestID] = true
		}
	}
	t.Logf("%d recovers, SIGTERM after %d answers with at least %d in flight: %s", len(jobs), len(jobs)/3, signal, formatTally(tally))
	if tally["200"] == 0 || tally["no answer"] == 0 {
		t.Fatalf("the signal did not land inside the burst (%s); the test proves nothing", formatTally(tally))
	}
	for k, n := range tally {
		if k != "200" && k != "no answer" {
			t.Errorf("%d recovers answered HTTP %s during shutdown, want 200 or no connection at all", n, k)
		}
	}

	// The requests the server was working on when it began shutting down were finished: their
	// log lines come after "shutting down", and each was answered 200 to its caller.
	log := srv.Output()
	at := strings.Index(log, `msg="shutting down"`)
	if at < 0 {
		t.Fatalf("no shutting-down line in the log:\n%s", log)
	}
	finished := regexp.MustCompile(`msg=request request_id=(\S+) method=POST route="POST /v1/b2b/recovery_codes/recover" status=(\d+)`).FindAllStringSubmatch(log[at:], -1)
	if len(finished) == 0 {
		t.Errorf("no recover finished after the server began shutting down; none was in flight?")
	}
	for _, f := range finished {
		if f[2] != "200" || !acked[f[1]] {
			t.Errorf("request %s finished during shutdown with status %s, acknowledged to its caller: %v", f[1], f[2], acked[f[1]])
		}
	}
	if !strings.Contains(log, `msg="stopped: every in-flight request finished"`) {
		t.Errorf("the server did not report a clean stop:\n%s", log[at:])
	}
	opsIntegrity(t, db.Path)

	// The same database, a new process: what was acknowledged is there, whole.
	again := startServer(t, serverOptions{DB: db.URL, Env: db.Env, Args: args, ProjectID: p.ID})
	c2 := again.Client(p)
	for i, m := range ms {
		left := recoveryCodes(t, c2, orgID, m.ID)
		sessions := opsSessions(t, c2, m)
		spent := 0
		for j, code := range m.Codes {
			if slices.Contains(left, code) {
				continue
			}
			spent++
			var job opsRecoverOutcome
			for _, x := range jobs {
				if x.member == i && x.code == j {
					job = x
				}
			}
			if job.status != http.StatusOK {
				t.Errorf("member %d code %d is spent, but its recover got %d %v: a request was carried out without its answer", i, j, job.status, job.err)
			} else if !slices.Contains(sessions, job.sessionID) {
				t.Errorf("member %d code %d: the acknowledged session %s is gone after the restart", i, j, job.sessionID)
			}
		}
		for _, x := range jobs {
			if x.member == i && x.status == http.StatusOK && slices.Contains(left, m.Codes[x.code]) {
				t.Errorf("member %d code %d was acknowledged (200) but is unspent after the restart", i, x.code)
			}
		}
		if len(sessions) != spent {
			t.Errorf("member %d: %d codes spent but %d sessions: a code and its session are one transaction", i, spent, len(sessions))
		}
	}
}

// TestBackupUnderLoad takes `sparekey backup` of a SQLite database while a server writes to it
// (recovers spending codes, rotations, new organizations and members) and restores it: the copy
// passes SQLite's integrity check, a server on it starts with the same master key, and it holds
// exactly a moment of the live database, every acknowledged write before the backup began and
// nothing begun after it ended: untouched members keep their codes; a rotated member has one of
// the sets it was issued, no mix; a member whose codes were being spent has a prefix of them
// spent and one session per spent code. The restored server serves those codes.
func TestBackupUnderLoad(t *testing.T) {
	db := newSQLite(t)
	p := createProject(t, db.URL, db.Env)
	srv := startServer(t, serverOptions{DB: db.URL, Env: db.Env, Args: []string{"--lock-threshold", "1000"}, ProjectID: p.ID})
	c := srv.Client(p)
	orgID := createOrganization(t, c, "Backup")
	steady := opsEnrollMembers(t, c, orgID, "steady", 2)
	rotated := opsEnrollMembers(t, c, orgID, "rotated", 2)
	spent := opsEnrollMembers(t, c, orgID, "spent", 4)
	ists := make([][]string, len(spent))
	for i, m := range spent {
		ists[i] = intermediateSessions(t, srv, c, orgID, m.Email, opsPassword, len(m.Codes))
	}

	// The load: per member, counters of requests begun and of 200s, and what the 200s returned.
	type progress struct {
		begun, acked atomic.Int64
		mu           sync.Mutex
		sets         [][]string // rotated: the sets issued, in order, the enrolment's first
	}
	rotations := make([]*progress, len(rotated))
	spends := make([]*progress, len(spent))
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	loadErr := make(chan error, 16)
	pace := func() bool { // a steady trickle, so the load outlasts the backup's process start
		select {
		case <-ctx.Done():
			return false
		case <-time.After(5 * time.Millisecond):
			return true
		}
	}
	for i, m := range rotated {
		rotations[i] = &progress{sets: [][]string{m.Codes}}
		wg.Add(1)
		go func(pr *progress) {
			defer wg.Done()
			for pace() {
				pr.begun.Add(1)
				r, err := c.call(http.MethodPost, "/v1/b2b/recovery_codes/rotate", map[string]any{"organization_id": orgID, "member_id": m.ID})
				if err != nil || r.Status != http.StatusOK {
					loadErr <- fmt.Errorf("rotate: %v %s", err, r.Raw)
					return
				}
				codes, _ := r.Body["recovery_codes"].([]any)
				set := make([]string, len(codes))
				for k, x := range codes {
					set[k], _ = x.(string)
				}
				pr.mu.Lock()
				pr.sets = append(pr.sets, set)
				pr.mu.Unlock()
				pr.acked.Add(1)
			}
		}(rotations[i])
	}
	for i := range spends {
		spends[i] = &progress{}
	}
	wg.Add(1)
	go func() { // one member after the other, each code in issue order
		defer wg.Done()
		for i, m := range spent {
			for k, code := range m.Codes {
				if !pace() {
					return
				}
				spends[i].begun.Add(1)
				r, err := c.call(http.MethodPost, "/v1/b2b/recovery_codes/recover", recoverBody(orgID, m.ID, code, ists[i][k]))
				if err != nil || r.Status != http.StatusOK {
					loadErr <- fmt.Errorf("recover: %v %s", err, r.Raw)
					return
				}
				spends[i].acked.Add(1)
			}
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; pace(); n++ {
			r, err := c.call(http.MethodPost, "/v1/b2b/organizations", map[string]any{"organization_name": fmt.Sprintf("Load %d", n)})
			if err == nil && r.Status == http.StatusOK {
				org, _ := r.Body["organization"].(map[string]any)["organization_id"].(string)
				r, err = c.call(http.MethodPost, "/v1/b2b/organizations/"+org+"/members", map[string]any{"email_address": fmt.Sprintf("load-%d@example.com", n)})
			}
			if err != nil || r.Status != http.StatusOK {
				loadErr <- fmt.Errorf("organization load: %v %s", err, r.Raw)
				return
			}
		}
	}()
	for spends[0].acked.Load() < 2 || rotations[0].acked.Load() < 2 { // the load is under way
		select {
		case err := <-loadErr:
			t.Fatal(err)
		case <-time.After(5 * time.Millisecond):
		}
	}

	snapshot := func(prs []*progress, counter func(*progress) int64) []int64 {
		out := make([]int64, len(prs))
		for i, pr := range prs {
			out[i] = counter(pr)
		}
		return out
	}
	acked := func(pr *progress) int64 { return pr.acked.Load() }
	begun := func(pr *progress) int64 { return pr.begun.Load() }
	rotAcked, spendAcked := snapshot(rotations, acked), snapshot(spends, acked)
	backupFile := filepath.Join(t.TempDir(), "backup.db")
	res := runSparekey(t, "", db.Env, "backup", "--db", db.URL, "--to", backupFile)
	rotBegun, spendBegun := snapshot(rotations, begun), snapshot(spends, begun)
	stop()
	wg.Wait()
	close(loadErr)
	for err := range loadErr {
		t.Error(err)
	}
	if res.ExitCode != 0 {
		if strings.Contains(res.Stderr, `unknown command "backup`) {
			t.Fatalf("sparekey has no backup command: register backupCommand() in cmd/sparekey/run.go commands()")
		}
		t.Fatalf("sparekey backup exited %d\nstdout: %s\nstderr: %s", res.ExitCode, res.Stdout, res.Stderr)
	}
	t.Logf("backup taken after %v spends and %v rotations acknowledged, before %v and %v begun; %s", spendAcked, rotAcked, spendBegun, rotBegun, strings.TrimSpace(res.Stdout))

	// Restore as the README says: the backup file becomes the database of a fresh data folder.
	opsIntegrity(t, backupFile)
	restoredPath := filepath.Join(t.TempDir(), "sparekey.db")
	opsCopyFile(t, backupFile, restoredPath)
	restored := startServer(t, serverOptions{DB: "sqlite:" + restoredPath, Env: db.Env, ProjectID: p.ID})
	rc := restored.Client(p)

	for _, m := range steady {
		if got := recoveryCodes(t, rc, orgID, m.ID); !slices.Equal(got, m.Codes) {
			t.Errorf("untouched member %s: restored codes %q, want %q", m.Email, got, m.Codes)
		}
	}
	for i, m := range rotated {
		got := recoveryCodes(t, rc, orgID, m.ID)
		sets := rotations[i].sets
		match := slices.IndexFunc(sets, func(s []string) bool { return slices.Equal(s, got) })
		if match < 0 || int64(match) < rotAcked[i] || int64(match) > rotBegun[i] {
			t.Errorf("rotated member %s: restored codes are set %d of %d issued, want one from %d (acknowledged before the backup) to %d (begun before it ended): %q",
				m.Email, match, len(sets), rotAcked[i], rotBegun[i], got)
		}
	}
	for i, m := range spent {
		got := recoveryCodes(t, rc, orgID, m.ID)
		k := len(m.Codes) - len(got)
		if !slices.Equal(got, m.Codes[k:]) || int64(k) < spendAcked[i] || int64(k) > spendBegun[i] {
			t.Errorf("spent member %s: restored codes %q, want the last 10-k of %q with k from %d to %d", m.Email, got, m.Codes, spendAcked[i], spendBegun[i])
		}
		if sessions := opsSessions(t, rc, m); len(sessions) != k {
			t.Errorf("spent member %s: %d codes spent in the backup but %d sessions", m.Email, k, len(sessions))
		}
	}

	// The restored server serves the codes it holds.
	m := steady[0]
	ist := passwordIST(t, rc, orgID, m.Email, opsPassword)
	if r := rc.do(t, http.MethodPost, "/v1/b2b/recovery_codes/recover", recoverBody(orgID, m.ID, m.Codes[3], ist)); r.Status != http.StatusOK || r.Int(t, "recovery_codes_remaining") != 9 {
		t.Errorf("recover on the restored server: HTTP %d %s", r.Status, r.Raw)
	}
}

func opsCopyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

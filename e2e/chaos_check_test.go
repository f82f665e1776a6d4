package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sparekey/sparekey/internal/store/postgres"
	"github.com/sparekey/sparekey/internal/store/sqlite"
)

// The checks of TestChaosKill, after the last round: what a last server shows (codes, sessions,
// events), then the database itself once that server has stopped.

// chaosFinal is what the checks read after the last round.
type chaosFinal struct {
	shown    map[*chaosMember]*chaosRequest // the last server's first GET of the member's codes
	after    map[*chaosMember]*chaosRequest // its GET after recovering with the first code shown
	sessions map[*chaosMember][]chaosSession
	events   map[*chaosMember][]chaosEvent
	rows     []chaosCodeRow
}

// chaosSession is a live session as GET /v1/b2b/sessions lists it.
type chaosSession struct {
	ID              string
	Factors         []string // the factor types, in order
	RecoveryCodeIDs []string // recovery_code_factor.totp_recovery_code_id of recovery_codes factors
	TOTPIDs         []string // authenticator_app_factor.totp_id of totp factors
}

// chaosEvent is an audit event as GET /sparekey/v1/events lists it.
type chaosEvent struct {
	ID        string         `json:"event_id"`
	Type      string         `json:"type"`
	MemberID  string         `json:"member_id"`
	RequestID string         `json:"request_id"`
	Data      map[string]any `json:"data"`
}

func (e chaosEvent) str(key string) string {
	s, _ := e.Data[key].(string)
	return s
}

func (e chaosEvent) String() string {
	return fmt.Sprintf("%s %s (request %s, data %v)", e.Type, e.ID, e.RequestID, e.Data)
}

// chaosCodeRow is a recovery code as the database holds it.
type chaosCodeRow struct {
	MemberID, RegistrationID, CodeID string
	Position                         int
	Used                             bool
}

// collect asks the last server, restarted after the last kill, for every member's codes,
// sessions and events; proves the shown codes are the verifiable ones by recovering with the
// first; and authenticates every session a 200 handed out.
func (run *chaosRun) collect(srv *server) *chaosFinal {
	t := run.t
	c := srv.Client(run.proj)
	rd := &chaosRound{n: chaosRounds + 1, c: c}
	f := &chaosFinal{
		shown:    map[*chaosMember]*chaosRequest{},
		after:    map[*chaosMember]*chaosRequest{},
		sessions: map[*chaosMember][]chaosSession{},
		events:   map[*chaosMember][]chaosEvent{},
	}
	for _, m := range run.members {
		g0 := run.get(rd, -1, m)
		if g0.Outcome != chaosAnswered || g0.Status != http.StatusOK {
			t.Fatalf("%v: want 200", g0)
		}
		f.shown[m] = g0
		want := g0.Codes
		if len(g0.Codes) > 0 {
			// The shown codes come from the sealed set, the accepted ones from the MAC rows: a
			// rotate that replaced one but not the other would show codes that do not work.
			ist, ok := run.login(rd, -1, m)
			if !ok {
				t.Fatalf("member %d: the last server refused the password login", m.Index)
			}
			code := g0.Codes[0]
			r := run.send(rd, -1, &chaosRequest{Op: chaosRecover, Member: m, Code: code}, http.MethodPost, "/v1/b2b/recovery_codes/recover", recoverBody(run.orgID, m.ID, code, ist))
			if r.Outcome != chaosAnswered || r.Status != http.StatusOK {
				t.Errorf("member %d: GET shows %q as unused (%v), but recovering with it answered %v: %s", m.Index, code, g0, r, r.Raw)
			} else {
				want = g0.Codes[1:]
			}
		}
		g1 := run.get(rd, -1, m)
		if g1.Outcome != chaosAnswered || g1.Status != http.StatusOK {
			t.Fatalf("%v: want 200", g1)
		}
		if !slices.Equal(g1.Codes, want) {
			t.Errorf("member %d: GET after the last recover shows %q, want %q", m.Index, g1.Codes, want)
		}
		f.after[m] = g1
		f.sessions[m] = chaosListSessions(t, c, run.orgID, m.ID)
		f.events[m] = chaosListEvents(t, c, m.ID)
	}

	// Every session a 200 handed out still authenticates (sessions last 60 minutes).
	authenticated := 0
	for _, r := range run.requests {
		if r.Outcome != chaosAnswered || r.Status != http.StatusOK || r.SessionToken == "" {
			continue
		}
		got, err := c.call(http.MethodPost, "/v1/b2b/sessions/authenticate", map[string]any{"session_token": r.SessionToken})
		if err != nil {
			t.Fatal(err)
		}
		id, _ := got.field("member_session", "member_session_id")
		if got.Status != http.StatusOK || id != r.SessionID {
			t.Errorf("%v: its session no longer authenticates: HTTP %d %s: %s", r, got.Status, got.ErrorType(), got.Raw)
		}
		authenticated++
	}
	run.t.Logf("authenticated the %d sessions answered 200 during the run on the last server", authenticated)
	return f
}

// chaosListSessions is GET /v1/b2b/sessions for the member.
func chaosListSessions(t *testing.T, c *apiClient, orgID, memberID string) []chaosSession {
	t.Helper()
	r := c.ok(t, http.MethodGet, "/v1/b2b/sessions?"+url.Values{"organization_id": {orgID}, "member_id": {memberID}}.Encode(), nil)
	var body struct {
		Sessions []struct {
			ID      string `json:"member_session_id"`
			Factors []struct {
				Type         string `json:"type"`
				RecoveryCode *struct {
					ID string `json:"totp_recovery_code_id"`
				} `json:"recovery_code_factor"`
				App *struct {
					ID string `json:"totp_id"`
				} `json:"authenticator_app_factor"`
			} `json:"authentication_factors"`
		} `json:"member_sessions"`
	}
	if err := chaosDecode(r.Raw, &body); err != nil {
		t.Fatalf("GET sessions: %v: %s", err, r.Raw)
	}
	out := make([]chaosSession, 0, len(body.Sessions))
	for _, s := range body.Sessions {
		cs := chaosSession{ID: s.ID}
		for _, f := range s.Factors {
			cs.Factors = append(cs.Factors, f.Type)
			switch {
			case f.Type == "recovery_codes" && f.RecoveryCode != nil:
				cs.RecoveryCodeIDs = append(cs.RecoveryCodeIDs, f.RecoveryCode.ID)
			case f.Type == "totp" && f.App != nil:
				cs.TOTPIDs = append(cs.TOTPIDs, f.App.ID)
			case f.Type != "password":
				t.Errorf("session %s of %s has a factor %q without its sub-object, or of a type this run never makes: %s", s.ID, memberID, f.Type, r.Raw)
			}
		}
		out = append(out, cs)
	}
	return out
}

// chaosListEvents is every event of the member, all pages of GET /sparekey/v1/events.
func chaosListEvents(t *testing.T, c *apiClient, memberID string) []chaosEvent {
	t.Helper()
	var all []chaosEvent
	cursor := ""
	for {
		q := url.Values{"member_id": {memberID}, "limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r := c.ok(t, http.MethodGet, "/sparekey/v1/events?"+q.Encode(), nil)
		var page struct {
			Events     []chaosEvent `json:"events"`
			NextCursor *string      `json:"next_cursor"`
		}
		if err := chaosDecode(r.Raw, &page); err != nil {
			t.Fatalf("GET events: %v: %s", err, r.Raw)
		}
		all = append(all, page.Events...)
		if page.NextCursor == nil {
			return all
		}
		cursor = *page.NextCursor
	}
}

func chaosDecode(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// chaosSQLiteCodeRows reads every recovery code from the SQLite file (read-only; no server runs).
func chaosSQLiteCodeRows(t *testing.T, db database) []chaosCodeRow {
	t.Helper()
	ctx := context.Background()
	conn, err := sql.Open("sqlite", "file:"+(&url.URL{Path: db.Path}).EscapedPath()+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, `SELECT r.member_id, r.id, c.id, c.position, c.used_at IS NOT NULL
		FROM recovery_codes c JOIN totp_registrations r ON r.pk = c.registration_pk`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []chaosCodeRow
	for rows.Next() {
		var row chaosCodeRow
		var id []byte
		if err := rows.Scan(&row.MemberID, &row.RegistrationID, &id, &row.Position, &row.Used); err != nil {
			t.Fatal(err)
		}
		u, err := uuid.FromBytes(id)
		if err != nil {
			t.Fatalf("recovery code id %x: %v", id, err)
		}
		row.CodeID = "member-totp-recovery-code-test-" + u.String()
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// chaosSQLiteIntegrity opens the file as the store does and runs its integrity and schema checks.
func chaosSQLiteIntegrity(t *testing.T, db database) error {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, db.Path)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.IntegrityCheck(ctx); err != nil {
		return err
	}
	return store.CheckSchema(ctx)
}

// chaosPostgresCodeRows reads every recovery code from the test schema.
func chaosPostgresCodeRows(t *testing.T, db database) []chaosCodeRow {
	t.Helper()
	ctx := context.Background()
	rows, err := queryPostgres(t, db).Query(ctx, `SELECT r.member_id, r.id, 'member-totp-recovery-code-test-' || c.id::text, c.position, c.used_at IS NOT NULL
		FROM recovery_codes c JOIN totp_registrations r ON r.pk = c.registration_pk`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []chaosCodeRow
	for rows.Next() {
		var row chaosCodeRow
		if err := rows.Scan(&row.MemberID, &row.RegistrationID, &row.CodeID, &row.Position, &row.Used); err != nil {
			t.Fatal(err)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// chaosPostgresIntegrity runs the store's integrity check on the test schema.
func chaosPostgresIntegrity(t *testing.T, db database) error {
	t.Helper()
	ctx := context.Background()
	store, err := postgres.Open(ctx, db.URL, postgres.Options{MaxConns: 2})
	if err != nil {
		return err
	}
	defer store.Close()
	return store.IntegrityCheck(ctx)
}

// check holds everything recorded to the guarantees.
func (run *chaosRun) check(f *chaosFinal) {
	t := run.t
	// 1. No code was accepted twice: a recovery code, its id, or a TOTP step of a member.
	byCode := map[string][]*chaosRequest{}
	byCodeID := map[string][]*chaosRequest{}
	byStep := map[string][]*chaosRequest{}
	for _, r := range run.requests {
		if r.Outcome != chaosAnswered || r.Status != http.StatusOK {
			continue
		}
		switch r.Op {
		case chaosRecover, chaosReplay:
			byCode[r.Code] = append(byCode[r.Code], r)
			byCodeID[r.CodeID] = append(byCodeID[r.CodeID], r)
		case chaosTOTP:
			k := fmt.Sprintf("member %d step %d", r.Member.Index, r.Step)
			byStep[k] = append(byStep[k], r)
		}
	}
	for _, dup := range []struct {
		what string
		by   map[string][]*chaosRequest
	}{{"recovery code", byCode}, {"recovery code id", byCodeID}, {"TOTP code of", byStep}} {
		for k, rs := range dup.by {
			if len(rs) > 1 {
				t.Errorf("%s %s was accepted %d times: %v", dup.what, k, len(rs), rs)
			}
		}
	}

	// How many unanswered requests the events show applied: the kills landed inside actions.
	answered := map[string]bool{}
	for _, r := range run.requests {
		if r.Outcome == chaosAnswered {
			answered[r.RequestID] = true
		}
	}
	applied := map[string]int{}
	for _, evs := range f.events {
		for _, e := range evs {
			if (e.Type == "recovery_code.used" || e.Type == "totp.authenticated" || e.Type == "recovery_codes.rotated") && !answered[e.RequestID] {
				applied[e.Type]++
			}
		}
	}
	t.Logf("unanswered requests whose action the database holds: %s", formatTally(applied))

	rowsOf := map[string][]chaosCodeRow{}
	for _, row := range f.rows {
		rowsOf[row.MemberID] = append(rowsOf[row.MemberID], row)
	}
	for _, m := range run.members {
		run.checkMember(m, f, rowsOf[m.ID])
	}
}

// chaosIssue is a set of codes that may have been the member's: the TOTP create's, an answered
// rotate's, or an unanswered rotate's (whose codes nobody saw).
type chaosIssue struct {
	What     string
	Codes    []string // nil: unknown
	Answered bool
	// Sent and Done bound when the set was stored: after Sent, before Done (for an unanswered
	// rotate, before its server died).
	Sent, Done int64
}

// possibleDuring reports whether x may have been the member's set at some moment between the
// clocks from and to: it was stored before to, and no answered rotate stored after it had
// finished before from.
func possibleDuring(issues []*chaosIssue, x *chaosIssue, from, to int64) bool {
	if x.Sent >= to {
		return false
	}
	for _, b := range issues {
		if b != x && b.Answered && b.Sent > x.Done && b.Done < from {
			return false
		}
	}
	return true
}

func (run *chaosRun) checkMember(m *chaosMember, f *chaosFinal, rows []chaosCodeRow) {
	t := run.t
	var reqs []*chaosRequest
	for _, r := range run.requests {
		if r.Member == m {
			reqs = append(reqs, r)
		}
	}
	issues := []*chaosIssue{{What: "TOTP create", Codes: m.Initial, Answered: true, Done: m.Enrolled}}
	for _, r := range reqs {
		if r.Op != chaosRotate {
			continue
		}
		switch {
		case r.Outcome == chaosAnswered && r.Status == http.StatusOK:
			issues = append(issues, &chaosIssue{What: r.String(), Codes: r.Codes, Answered: true, Sent: r.Sent, Done: r.Done})
		case r.Outcome == chaosUnknown:
			issues = append(issues, &chaosIssue{What: r.String(), Sent: r.Sent, Done: run.deaths[r.Round]})
		}
	}

	// 2. No rotate is half applied: every GET, during the run and after it, shows codes of one
	// set that may have been current then, none spent before it was sent, and every code of
	// that set it does not show was sent by a recover that may have spent it.
	for _, g := range reqs {
		if g.Op == chaosGet && g.Outcome == chaosAnswered && g.Status == http.StatusOK {
			run.checkShown(m, g, issues, reqs)
		}
	}
	// ... and the database holds one whole set: ten codes, positions 0 to 9, of the
	// registration TOTP create made, as many unused as the last GET shows.
	positions := map[int]bool{}
	unused := 0
	for _, row := range rows {
		positions[row.Position] = true
		if row.RegistrationID != m.RegID {
			t.Errorf("member %d: a recovery code of registration %s in the database, want only %s", m.Index, row.RegistrationID, m.RegID)
		}
		if !row.Used {
			unused++
		}
	}
	if len(rows) != 10 || len(positions) != 10 {
		t.Errorf("member %d: the database holds %d codes at %d positions, want one whole set of 10: %+v", m.Index, len(rows), len(positions), rows)
	}
	if last := f.after[m]; unused != len(last.Codes) {
		t.Errorf("member %d: the database holds %d unused codes, but the last GET showed %d: %v %q", m.Index, unused, len(last.Codes), last, last.Codes)
	}

	// 3. Every session has its consumed code and its events, and every event its session.
	sessions := map[string]chaosSession{}
	for _, s := range f.sessions[m] {
		sessions[s.ID] = s
	}
	row := map[string]chaosCodeRow{}
	for _, r := range rows {
		row[r.CodeID] = r
	}
	used := map[string][]chaosEvent{}    // code id → recovery_code.used
	created := map[string][]chaosEvent{} // session id → session.created
	totpOK := map[string][]chaosEvent{}  // session id → totp.authenticated
	byRequest := map[string][]chaosEvent{}
	rotated := 0
	for _, e := range f.events[m] {
		byRequest[e.RequestID] = append(byRequest[e.RequestID], e)
		switch e.Type {
		case "recovery_code.used":
			used[e.str("totp_recovery_code_id")] = append(used[e.str("totp_recovery_code_id")], e)
		case "session.created":
			created[e.str("member_session_id")] = append(created[e.str("member_session_id")], e)
		case "totp.authenticated":
			totpOK[e.str("member_session_id")] = append(totpOK[e.str("member_session_id")], e)
		case "recovery_codes.rotated":
			rotated++
		}
	}
	for _, id := range chaosSortedKeys(used) {
		evs := used[id]
		if len(evs) > 1 {
			t.Errorf("member %d: recovery code %s was accepted %d times: %v", m.Index, id, len(evs), evs)
		}
		for _, e := range evs {
			sid := e.str("member_session_id")
			s, ok := sessions[sid]
			switch {
			case !ok:
				t.Errorf("member %d: %v names a session that does not exist", m.Index, e)
			case !slices.Contains(s.RecoveryCodeIDs, id):
				t.Errorf("member %d: %v names session %s, whose factors %v do not name that code", m.Index, e, sid, s.Factors)
			}
			if r, ok := row[id]; ok && !r.Used {
				t.Errorf("member %d: %v, but the database holds that code unused: %+v", m.Index, e, r)
			}
		}
	}
	for _, r := range rows {
		if r.Used && len(used[r.CodeID]) != 1 {
			t.Errorf("member %d: code %s is spent in the database, but %d recovery_code.used events name it: %v", m.Index, r.CodeID, len(used[r.CodeID]), used[r.CodeID])
		}
	}
	for _, id := range chaosSortedKeys(sessions) {
		s := sessions[id]
		if len(s.RecoveryCodeIDs)+len(s.TOTPIDs) != 1 {
			t.Errorf("member %d: session %s has the factors %v, want a password and one recovery code or one TOTP code", m.Index, id, s.Factors)
		}
		if len(created[id]) != 1 {
			t.Errorf("member %d: session %s (factors %v) has %d session.created events, want 1: %v", m.Index, id, s.Factors, len(created[id]), created[id])
		}
		for _, code := range s.RecoveryCodeIDs {
			evs := used[code]
			if len(evs) != 1 || evs[0].str("member_session_id") != id {
				t.Errorf("member %d: session %s names recovery code %s, whose recovery_code.used events are %v, want one naming the session", m.Index, id, code, evs)
			}
			if r, ok := row[code]; ok && !r.Used {
				t.Errorf("member %d: session %s names recovery code %s, which the database holds unused: %+v", m.Index, id, code, r)
			}
		}
		for _, reg := range s.TOTPIDs {
			if reg != m.RegID {
				t.Errorf("member %d: session %s names TOTP registration %s, want %s", m.Index, id, reg, m.RegID)
			}
			if len(totpOK[id]) != 1 {
				t.Errorf("member %d: session %s has a TOTP factor and %d totp.authenticated events, want 1: %v", m.Index, id, len(totpOK[id]), totpOK[id])
			}
		}
	}
	for _, evs := range [][]chaosEvent{chaosFlatten(created), chaosFlatten(totpOK)} {
		for _, e := range evs {
			if _, ok := sessions[e.str("member_session_id")]; !ok {
				t.Errorf("member %d: %v names a session that does not exist", m.Index, e)
			}
		}
	}

	// The events are those of the answered 200s, plus at most the unanswered requests; a
	// refused request left none; each 200 finds its own event, its session and its request id.
	count := map[string][2]int{} // op → {answered 200, unknown outcome}
	for _, r := range reqs {
		op := r.Op
		if op == chaosReplay {
			op = chaosRecover
		}
		c := count[op]
		switch {
		case r.Outcome == chaosAnswered && r.Status == http.StatusOK:
			c[0]++
		case r.Outcome == chaosUnknown:
			c[1]++
		}
		count[op] = c
		if r.Outcome != chaosAnswered {
			continue
		}
		evs := byRequest[r.RequestID]
		if r.Status != http.StatusOK {
			for _, e := range evs {
				if e.Type == "recovery_code.used" || e.Type == "session.created" || e.Type == "totp.authenticated" || e.Type == "recovery_codes.rotated" {
					t.Errorf("member %d: %v was refused, yet wrote %v", m.Index, r, e)
				}
			}
			continue
		}
		want := map[string]string{
			chaosRecover: "recovery_code.used", chaosReplay: "recovery_code.used",
			chaosTOTP: "totp.authenticated", chaosRotate: "recovery_codes.rotated",
		}[r.Op]
		if want == "" {
			continue
		}
		var found *chaosEvent
		for i := range evs {
			if evs[i].Type == want {
				found = &evs[i]
			}
		}
		switch {
		case found == nil:
			t.Errorf("member %d: %v has no %s event with its request id", m.Index, r, want)
		case r.SessionID != "" && found.str("member_session_id") != r.SessionID:
			t.Errorf("member %d: %v, but its event %v names another session", m.Index, r, found)
		case r.CodeID != "" && found.str("totp_recovery_code_id") != r.CodeID:
			t.Errorf("member %d: %v, but its event %v names another code", m.Index, r, found)
		}
		if r.SessionID != "" {
			if _, ok := sessions[r.SessionID]; !ok {
				t.Errorf("member %d: %v, but its session is not among the member's sessions", m.Index, r)
			}
		}
	}
	for _, n := range []struct {
		op, event string
		got       int
	}{
		{chaosRecover, "recovery_code.used", len(chaosFlatten(used))},
		{chaosTOTP, "totp.authenticated", len(chaosFlatten(totpOK))},
		{chaosRotate, "recovery_codes.rotated", rotated},
	} {
		c := count[n.op]
		if n.got < c[0] || n.got > c[0]+c[1] {
			t.Errorf("member %d: %d %s events, want the %d of the %ss answered 200 plus at most the %d unanswered", m.Index, n.got, n.event, c[0], n.op, c[1])
		}
	}
	if n := len(chaosFlatten(used)) + len(chaosFlatten(totpOK)); len(sessions) != n {
		t.Errorf("member %d: %d sessions, want one per recovery_code.used and totp.authenticated event (%d)", m.Index, len(sessions), n)
	}
}

// checkShown judges one answered GET g of m's codes.
func (run *chaosRun) checkShown(m *chaosMember, g *chaosRequest, issues []*chaosIssue, reqs []*chaosRequest) {
	t := run.t
	if len(g.Codes) == 0 {
		return // a set spent to the end says nothing of which set it was
	}
	var owners []*chaosIssue
	for _, x := range issues {
		for _, c := range g.Codes {
			if slices.Contains(x.Codes, c) {
				owners = append(owners, x)
				break
			}
		}
	}
	switch len(owners) {
	case 0:
		for _, x := range issues {
			if x.Codes == nil && possibleDuring(issues, x, g.Sent, g.Done) {
				return // the set of a rotate whose answer the kill took
			}
		}
		t.Errorf("member %d: %v shows %q, codes of no set issued to the member, and no unanswered rotate could have issued them", m.Index, g, g.Codes)
		return
	case 1:
	default:
		what := make([]string, len(owners))
		for i, x := range owners {
			what[i] = x.What
		}
		t.Errorf("member %d: %v shows %q, codes of %d different sets (a half-applied rotate): %s", m.Index, g, g.Codes, len(owners), strings.Join(what, "; "))
		return
	}
	x := owners[0]
	// Unused codes in issue order, all of the one set.
	var inOrder []string
	for _, c := range x.Codes {
		if slices.Contains(g.Codes, c) {
			inOrder = append(inOrder, c)
		}
	}
	if !slices.Equal(inOrder, g.Codes) {
		t.Errorf("member %d: %v shows %q, which mixes the set of %s (%q) with codes of no known set, or breaks its order", m.Index, g, g.Codes, x.What, x.Codes)
		return
	}
	if !possibleDuring(issues, x, g.Sent, g.Done) {
		t.Errorf("member %d: %v shows the set of %s, which an answered rotate had replaced before the GET was sent", m.Index, g, x.What)
	}
	var stale []string
	for _, r := range reqs {
		if (r.Op == chaosRecover || r.Op == chaosReplay) && r.Outcome == chaosAnswered && r.Done < g.Sent &&
			(r.Status == http.StatusOK || r.Status == http.StatusUnauthorized) && slices.Contains(g.Codes, r.Code) {
			// The set was current from before the code was known until this GET, so the
			// code was spent when r was answered.
			stale = append(stale, r.String())
		}
	}
	if len(stale) > 0 {
		var rotates []string
		for _, r := range reqs {
			done := r.Done
			if r.Outcome == chaosUnknown {
				done = run.deaths[r.Round]
			}
			if r.Op == chaosRotate && r.Outcome != chaosUnsent && r.Sent < g.Done && done > g.Sent {
				rotates = append(rotates, r.String())
			}
		}
		t.Errorf("member %d: %v shows %q, the set of %s, with %d codes as unused that were spent (or refused) before the GET was sent:\n  %s\nrotates of the member in flight during the GET: %s",
			m.Index, g, g.Codes, x.What, len(stale), strings.Join(stale, "\n  "), strings.Join(rotates, "; "))
	}
	for _, c := range x.Codes {
		if slices.Contains(g.Codes, c) {
			continue
		}
		spender := false
		for _, r := range reqs {
			if (r.Op == chaosRecover || r.Op == chaosReplay) && r.Code == c && r.Sent < g.Done &&
				(r.Outcome == chaosUnknown || r.Outcome == chaosAnswered && r.Status == http.StatusOK) {
				spender = true
			}
		}
		if !spender {
			t.Errorf("member %d: %v no longer shows %q of the set of %s, but no recover that could have spent it was sent before", m.Index, g, c, x.What)
		}
	}
}

func chaosSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func chaosFlatten(m map[string][]chaosEvent) []chaosEvent {
	var out []chaosEvent
	for _, k := range chaosSortedKeys(m) {
		out = append(out, m[k]...)
	}
	return out
}

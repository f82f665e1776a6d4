package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The replica tests run three `sparekey serve` processes on one PostgreSQL schema and send each
// step of a flow to a different one, as a load balancer would: everything a request leaves
// behind must be in the database, seen by every replica at once (DESIGN §1 and §2).

const (
	replicaCount      = 3
	replicaRaceRounds = 3 // fresh member each round
	replicaPassword   = "correct horse battery staple"
)

// TestReplicas shares one set of replicas between flows that do not lock anyone: its lock
// threshold of 1000 keeps the 63 lost races of a round from locking the member, so every loser
// must be a plain 401.
func TestReplicas(t *testing.T) {
	rs := startReplicas(t, replicaCount, "--lock-threshold", "1000")
	orgID := createOrganization(t, rs.Clients[0], "Replicas")
	hash := bcryptHash(t, replicaPassword)

	t.Run("64 parallel recovers of one code over three replicas, one success", func(t *testing.T) {
		for round := 1; round <= replicaRaceRounds; round++ {
			ok := t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
				raceAcrossReplicas(t, rs, orgID, fmt.Sprintf("replica-racer-%d@example.com", round), hash)
			})
			if !ok {
				break // one failed round is the finding; later rounds would repeat or hang on it
			}
		}
	})

	t.Run("a session made on one replica authenticates on the others", func(t *testing.T) {
		sessionAcrossReplicas(t, rs, orgID, hash)
	})

	t.Run("every replica serves the same JWKS", func(t *testing.T) {
		sameJWKS(t, rs)
	})

	t.Run("a rotate on one replica is seen by the others at once", func(t *testing.T) {
		rotateAcrossReplicas(t, rs, orgID, hash)
	})
}

// memberWithCodes creates a member with a bcrypt password and a TOTP registration, each step on
// another replica, and returns its id and its ten codes.
func memberWithCodes(t *testing.T, rs *replicaSet, orgID, email, hash string) (string, []string) {
	t.Helper()
	memberID := createMember(t, rs.Clients[0], orgID, email)
	migratePassword(t, rs.Clients[1%len(rs.Clients)], orgID, email, hash)
	codes := totpCreate(t, rs.Clients[2%len(rs.Clients)], orgID, memberID).Strings(t, "recovery_codes")
	return memberID, codes
}

func raceAcrossReplicas(t *testing.T, rs *replicaSet, orgID, email, hash string) {
	c := rs.Clients
	n := len(c)
	memberID, codes := memberWithCodes(t, rs, orgID, email, hash)
	ists := istsAcrossReplicas(t, rs, orgID, email, racers)

	const path = "/v1/b2b/recovery_codes/recover"
	var (
		barrier = make(chan struct{})
		ready   sync.WaitGroup
		done    sync.WaitGroup
		answers = make([]apiResponse, racers)
		errs    = make([]error, racers)
	)
	ready.Add(racers)
	done.Add(racers)
	for i := range racers {
		body := recoverBody(orgID, memberID, codes[0], ists[i])
		client := c[i%n] // round-robin, as a load balancer spreads them
		go func() {
			defer done.Done()
			ready.Done()
			<-barrier
			answers[i], errs[i] = client.call(http.MethodPost, path, body)
		}()
	}
	ready.Wait()
	if rs.dumpIfStuck(t, burstPatience, func() { close(barrier); done.Wait() }) {
		t.Fatalf("the %d parallel recovers were not all answered within %v; each replica's goroutine dump (SIGQUIT) ends its output", racers, burstPatience)
	}

	var winners, losers []int
	tally := map[string]int{}
	for i, r := range answers {
		if errs[i] != nil {
			t.Errorf("racer %d (replica %d): %v", i, i%n, errs[i])
			continue
		}
		tally[fmt.Sprintf("replica %d: %d %s", i%n, r.Status, r.ErrorType())]++
		switch {
		case r.Status == http.StatusOK:
			winners = append(winners, i)
		case r.Status == http.StatusUnauthorized && r.ErrorType() == "unable_to_authenticate_recovery_code":
			losers = append(losers, i)
		default:
			t.Errorf("racer %d (replica %d): HTTP %d %s, want 401 unable_to_authenticate_recovery_code (a loser) or 200 (the winner): %s", i, i%n, r.Status, r.ErrorType(), r.Raw)
		}
	}
	t.Logf("answers to %d parallel recovers of one code: %s", racers, formatTally(tally))
	if len(winners) != 1 {
		t.Fatalf("%d of %d parallel recovers of one code over %d replicas succeeded, want exactly 1 (answers: %s)", len(winners), racers, n, formatTally(tally))
	}
	if t.Failed() {
		return
	}
	w := winners[0]
	winner := answers[w]
	if got := winner.Int(t, "recovery_codes_remaining"); got != 9 {
		t.Errorf("the winner's recovery_codes_remaining = %d, want 9", got)
	}
	sessionID := winner.Str(t, "member_session", "member_session_id")

	for i, client := range c {
		// Exactly one code is gone, on every replica.
		if got := recoveryCodes(t, client, orgID, memberID); !slices.Equal(got, codes[1:]) {
			t.Errorf("GET recovery codes on replica %d after the race = %q, want the 9 untouched codes %q", i, got, codes[1:])
		}
		// The winner's session is in the database, whichever replica asks.
		if ids := sessionIDs(t, client, orgID, memberID); !slices.Contains(ids, sessionID) {
			t.Errorf("GET sessions on replica %d lists %q, want the winner's session %s (made on replica %d)", i, ids, sessionID, w%n)
		}
	}

	// The winning IST was consumed with the code (§6.0.1), for every replica.
	other := (w + 1) % n
	again := c[other].do(t, http.MethodPost, path, recoverBody(orgID, memberID, codes[1], ists[w]))
	if again.Status != http.StatusNotFound || again.ErrorType() != "intermediate_session_not_found" {
		t.Errorf("recover on replica %d with the winner's IST (consumed on replica %d): HTTP %d %s, want 404 intermediate_session_not_found: %s", other, w%n, again.Status, again.ErrorType(), again.Raw)
	}

	// A failed call leaves the IST usable (§6.0.1): nine losers spend the nine codes, each on
	// another replica than the one that refused it.
	for j, code := range codes[1:] {
		l := losers[j]
		on := (l + 1) % n
		r := c[on].do(t, http.MethodPost, path, recoverBody(orgID, memberID, code, ists[l]))
		if r.Status != http.StatusOK {
			t.Errorf("recover on replica %d with loser %d's IST (refused on replica %d) and unused code %d: HTTP %d %s, want 200: %s", on, l, l%n, j+2, r.Status, r.ErrorType(), r.Raw)
			continue
		}
		if got := r.Int(t, "recovery_codes_remaining"); got != int64(8-j) {
			t.Errorf("recover with unused code %d: recovery_codes_remaining = %d, want %d", j+2, got, 8-j)
		}
	}
	for i, client := range c {
		if got := recoveryCodes(t, client, orgID, memberID); len(got) != 0 {
			t.Errorf("GET recovery codes on replica %d after all ten were spent = %q, want []", i, got)
		}
	}
}

// istsAcrossReplicas logs the member in n times in parallel, login i on replica i mod the
// replica count, and returns the n distinct intermediate session tokens. It also leaves the
// clients with warm connections to every replica.
func istsAcrossReplicas(t *testing.T, rs *replicaSet, orgID, email string, n int) []string {
	t.Helper()
	return parallelLogins(t, rs.Clients, rs.dumpIfStuck, "each replica's goroutine dump (SIGQUIT) ends its output", orgID, email, replicaPassword, n)
}

// sessionIDs is GET /v1/b2b/sessions: the ids of the member's live sessions.
func sessionIDs(t testing.TB, c *apiClient, orgID, memberID string) []string {
	t.Helper()
	r := c.ok(t, http.MethodGet, "/v1/b2b/sessions?"+url.Values{"organization_id": {orgID}, "member_id": {memberID}}.Encode(), nil)
	ids, err := memberSessionIDs(r)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// memberSessionIDs reads member_sessions[].member_session_id; goroutines may use it.
func memberSessionIDs(r apiResponse) ([]string, error) {
	list, ok := r.Body["member_sessions"].([]any)
	if !ok {
		return nil, fmt.Errorf("member_sessions is %#v, want an array, in %s", r.Body["member_sessions"], r.Raw)
	}
	ids := make([]string, 0, len(list))
	for _, e := range list {
		s, _ := e.(map[string]any)
		id, _ := s["member_session_id"].(string)
		if id == "" {
			return nil, fmt.Errorf("a member session without a member_session_id in %s", r.Raw)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// jwtKID is the kid in a compact JWT's header.
func jwtKID(t testing.TB, jwt string) string {
	t.Helper()
	header, _, _ := strings.Cut(jwt, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	var h struct {
		KID string `json:"kid"`
	}
	if err != nil || json.Unmarshal(raw, &h) != nil || h.KID == "" {
		t.Fatalf("session_jwt %q has no readable kid in its header", jwt)
	}
	return h.KID
}

func sessionAcrossReplicas(t *testing.T, rs *replicaSet, orgID, hash string) {
	c := rs.Clients
	email := "replica-session@example.com"
	memberID, codes := memberWithCodes(t, rs, orgID, email, hash)
	ist := passwordIST(t, c[0], orgID, email, replicaPassword)
	made := c[0].ok(t, http.MethodPost, "/v1/b2b/recovery_codes/recover", recoverBody(orgID, memberID, codes[0], ist))
	sessionID := made.Str(t, "member_session", "member_session_id")
	token := made.Str(t, "session_token")
	jwt := made.Str(t, "session_jwt")
	kids := map[string][]string{jwtKID(t, jwt): {"recover on replica 0"}}

	const authenticate = "/v1/b2b/sessions/authenticate"
	for i, client := range c {
		for _, arg := range []struct{ name, value string }{{"session_token", token}, {"session_jwt", jwt}} {
			r := client.do(t, http.MethodPost, authenticate, map[string]any{arg.name: arg.value})
			if r.Status != http.StatusOK {
				t.Errorf("sessions/authenticate on replica %d with the %s made on replica 0: HTTP %d %s, want 200: %s", i, arg.name, r.Status, r.ErrorType(), r.Raw)
				continue
			}
			if got := r.Str(t, "member_session", "member_session_id"); got != sessionID {
				t.Errorf("sessions/authenticate on replica %d with the %s: member_session_id %s, want %s", i, arg.name, got, sessionID)
			}
			want := token
			if arg.name == "session_jwt" {
				want = "" // §3 rule 7: the server cannot hand back a token it was not given
			}
			if got := r.Str(t, "session_token"); got != want {
				t.Errorf("sessions/authenticate on replica %d with the %s: session_token %q, want %q", i, arg.name, got, want)
			}
			kid := jwtKID(t, r.Str(t, "session_jwt"))
			kids[kid] = append(kids[kid], fmt.Sprintf("authenticate on replica %d", i))
		}
		if ids := sessionIDs(t, client, orgID, memberID); !slices.Equal(ids, []string{sessionID}) {
			t.Errorf("GET sessions on replica %d = %q, want [%s]", i, ids, sessionID)
		}
	}
	// The newest key signs (§7), and all replicas read the keys from the one database.
	if len(kids) != 1 {
		t.Errorf("the replicas signed session JWTs with %d different keys, want one: %v", len(kids), kids)
	}

	// A revoke on one replica ends the session for all of them.
	c[1].ok(t, http.MethodPost, "/v1/b2b/sessions/revoke", map[string]any{"member_session_id": sessionID})
	for i, client := range c {
		for _, arg := range []struct{ name, value string }{{"session_token", token}, {"session_jwt", jwt}} {
			r := client.do(t, http.MethodPost, authenticate, map[string]any{arg.name: arg.value})
			if r.Status != http.StatusNotFound || r.ErrorType() != "session_not_found" {
				t.Errorf("sessions/authenticate on replica %d with the %s revoked on replica 1: HTTP %d %s, want 404 session_not_found: %s", i, arg.name, r.Status, r.ErrorType(), r.Raw)
			}
		}
	}
}

func sameJWKS(t *testing.T, rs *replicaSet) {
	var first json.RawMessage
	for i, client := range rs.Clients {
		r := client.ok(t, http.MethodGet, "/v1/b2b/sessions/jwks/"+rs.Project.ID, nil)
		var body struct {
			Keys json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(r.Raw, &body); err != nil {
			t.Fatalf("JWKS of replica %d: %v: %s", i, err, r.Raw)
		}
		var keys []map[string]any
		if err := json.Unmarshal(body.Keys, &keys); err != nil || len(keys) == 0 {
			t.Fatalf("JWKS of replica %d: keys is %s, want a non-empty array of JWKs", i, body.Keys)
		}
		if i == 0 {
			first = body.Keys
			continue
		}
		if !bytes.Equal(body.Keys, first) {
			t.Errorf("the keys of replica %d differ from those of replica 0:\nreplica 0: %s\nreplica %d: %s", i, first, i, body.Keys)
		}
	}
}

func rotateAcrossReplicas(t *testing.T, rs *replicaSet, orgID, hash string) {
	c := rs.Clients
	n := len(c)
	email := "replica-rotate@example.com"
	memberID, current := memberWithCodes(t, rs, orgID, email, hash)
	const rotate = "/v1/b2b/recovery_codes/rotate"
	ref := map[string]any{"organization_id": orgID, "member_id": memberID}
	for i := range n {
		old := current
		rotated := c[i].ok(t, http.MethodPost, rotate, ref).Strings(t, "recovery_codes")
		if len(rotated) != 10 || slices.ContainsFunc(rotated, func(code string) bool { return slices.Contains(old, code) }) {
			t.Fatalf("rotate on replica %d returned %q, want 10 codes none of which was in the old set %q", i, rotated, old)
		}
		for j := 1; j < n; j++ {
			other := (i + j) % n
			if got := recoveryCodes(t, c[other], orgID, memberID); !slices.Equal(got, rotated) {
				t.Errorf("GET recovery codes on replica %d right after a rotate on replica %d = %q, want the new set %q", other, i, got, rotated)
			}
		}

		// The old set is dead and the new one alive on the other replicas, in the recover path too.
		next := (i + 1) % n
		stale := c[next].do(t, http.MethodPost, "/v1/b2b/recovery_codes/recover",
			recoverBody(orgID, memberID, old[0], passwordIST(t, c[next], orgID, email, replicaPassword)))
		if stale.Status != http.StatusUnauthorized || stale.ErrorType() != "unable_to_authenticate_recovery_code" {
			t.Errorf("recover on replica %d with a code rotated away on replica %d: HTTP %d %s, want 401 unable_to_authenticate_recovery_code: %s", next, i, stale.Status, stale.ErrorType(), stale.Raw)
		}
		fresh := (i + 2) % n
		r := c[fresh].do(t, http.MethodPost, "/v1/b2b/recovery_codes/recover",
			recoverBody(orgID, memberID, rotated[0], passwordIST(t, c[fresh], orgID, email, replicaPassword)))
		if r.Status != http.StatusOK {
			t.Fatalf("recover on replica %d with a code rotated in on replica %d: HTTP %d %s, want 200: %s", fresh, i, r.Status, r.ErrorType(), r.Raw)
		}
		if got := r.Int(t, "recovery_codes_remaining"); got != 9 {
			t.Errorf("recover with a code of the new set: recovery_codes_remaining = %d, want 9", got)
		}
		current = rotated[1:]
		if got := recoveryCodes(t, c[i], orgID, memberID); !slices.Equal(got, current) {
			t.Errorf("GET recovery codes on replica %d after a recover on replica %d = %q, want %q", i, fresh, got, current)
		}
	}
}

// TestReplicasShareTheLock: failed attempts made on different replicas add up to one counter
// in the database (DESIGN §2), so the 10th wrong code locks the member everywhere (§6.0.3).
func TestReplicasShareTheLock(t *testing.T) {
	const threshold = 10
	rs := startReplicas(t, replicaCount, "--lock-threshold", strconv.Itoa(threshold))
	c := rs.Clients
	n := len(c)
	orgID := createOrganization(t, c[0], "Replica lock")
	email := "replica-lock@example.com"
	memberID, codes := memberWithCodes(t, rs, orgID, email, bcryptHash(t, replicaPassword))
	ist := passwordIST(t, c[0], orgID, email, replicaPassword)
	const recover = "/v1/b2b/recovery_codes/recover"

	for attempt := 1; attempt <= threshold; attempt++ {
		on := (attempt - 1) % n
		wrong := newRecoveryCode(t)
		for slices.Contains(codes, wrong) {
			wrong = newRecoveryCode(t)
		}
		r := c[on].do(t, http.MethodPost, recover, recoverBody(orgID, memberID, wrong, ist))
		if attempt < threshold {
			if r.Status != http.StatusUnauthorized || r.ErrorType() != "unable_to_authenticate_recovery_code" {
				t.Fatalf("wrong code %d of %d, on replica %d: HTTP %d %s, want 401 unable_to_authenticate_recovery_code: %s", attempt, threshold, on, r.Status, r.ErrorType(), r.Raw)
			}
			continue
		}
		if r.Status != http.StatusTooManyRequests || r.ErrorType() != "user_lock_limit_reached" {
			t.Fatalf("wrong code %d of %d (the others spread over %d replicas), on replica %d: HTTP %d %s, want 429 user_lock_limit_reached: %s", attempt, threshold, n, on, r.Status, r.ErrorType(), r.Raw)
		}
		wantRetryAfter(t, r, fmt.Sprintf("wrong code %d on replica %d", attempt, on))
	}

	// Locked everywhere: even the right code gets 429 without being looked at, with the IST of
	// the failures and with a fresh one (a password login is not blocked by the lock).
	var lockExpires string
	for i, client := range c {
		fresh := passwordIST(t, client, orgID, email, replicaPassword)
		for _, tok := range []struct{ name, ist string }{{"the failures' IST", ist}, {"a fresh IST", fresh}} {
			r := client.do(t, http.MethodPost, recover, recoverBody(orgID, memberID, codes[0], tok.ist))
			if r.Status != http.StatusTooManyRequests || r.ErrorType() != "user_lock_limit_reached" {
				t.Errorf("recover on replica %d with a right code and %s after the lock: HTTP %d %s, want 429 user_lock_limit_reached: %s", i, tok.name, r.Status, r.ErrorType(), r.Raw)
				continue
			}
			wantRetryAfter(t, r, fmt.Sprintf("recover on replica %d while locked", i))
		}
		m := client.ok(t, http.MethodGet, "/v1/b2b/organizations/"+orgID+"/member?member_id="+memberID, nil)
		if !m.Bool(t, "member", "is_locked") {
			t.Errorf("GET member on replica %d: is_locked false after the lock: %s", i, m.Raw)
		}
		exp := m.Str(t, "member", "lock_expires_at")
		if i == 0 {
			lockExpires = exp
		} else if exp != lockExpires {
			t.Errorf("GET member on replica %d: lock_expires_at %s, replica 0 says %s; there is one lock", i, exp, lockExpires)
		}
		// The refused right code was not spent.
		if got := recoveryCodes(t, client, orgID, memberID); !slices.Equal(got, codes) {
			t.Errorf("GET recovery codes on replica %d after the lock = %q, want all ten %q", i, got, codes)
		}
	}
}

// wantRetryAfter checks the Retry-After of a 429 user_lock_limit_reached (§8).
func wantRetryAfter(t testing.TB, r apiResponse, what string) {
	t.Helper()
	if secs, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || secs <= 0 {
		t.Errorf("%s: 429 with Retry-After %q, want a positive number of seconds", what, r.Header.Get("Retry-After"))
	}
}

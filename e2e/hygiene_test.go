package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparekey/sparekey/client"
	"github.com/sparekey/sparekey/internal/totp"
)

// TestNoSecretInDatabaseLogErrorsOrEvents runs a scripted life cycle against a server at
// --log-level debug, with a webhook registered to a receiver in the test, and then looks for
// every secret that crossed the wire, byte for byte, in the SQLite file, its -wal and -shm
// (copied while the server ran, and as left after SIGTERM), everything the server printed, every
// error body it answered, the whole audit trail (GET /sparekey/v1/events, every page), the
// webhook requests the receiver got and the webhook's list and deliveries (DESIGN §2: codes and
// secrets are stored encrypted or as digests and the plaintext never reaches a log; CONTRACT §8:
// an error_message never holds a code, token, password or secret). The script makes refused
// calls carrying secrets too: that is where a careless error message or event would echo one.
// The webhook's whsec_ secret is in the create response and nowhere else, not even in another
// success body.
func TestNoSecretInDatabaseLogErrorsOrEvents(t *testing.T) {
	db := newSQLite(t)
	// Created before serve starts, so serve has no first-start banner to print: the project
	// secret must then never appear in its output.
	p := createProject(t, db.URL, db.Env)
	args := append([]string{"--log-level", "debug"}, webhookFlags...)
	srv := startServer(t, serverOptions{DB: db.URL, Env: db.Env, Args: args, ProjectID: p.ID})
	c := srv.Client(p)
	answers := &answerLog{next: c.http.Transport}
	c.http.Transport = answers

	s := &secretList{t: t}
	masterKey, err := hex.DecodeString(db.MasterKey)
	if err != nil {
		t.Fatal(err)
	}
	s.addText("master key (hex)", db.MasterKey)
	s.addBytes("master key (raw bytes)", masterKey)
	s.addText("project secret", p.Secret)

	// The webhook first, so every event of the script is delivered to it.
	rcv := newHookCapture(t)
	created := c.ok(t, http.MethodPost, "/sparekey/v1/webhooks", map[string]any{"url": rcv.URL + "/hooks/sparekey"})
	hookSecret := created.Str(t, "secret")
	rcv.setSecret(hookSecret)
	hookID := created.Str(t, "webhook", "webhook_id")
	hook := &secretList{t: t}
	hook.addWebhookSecret(hookSecret)
	s.addWebhookSecret(hookSecret)

	lifeCycle(t, c, s)
	wrongCredentials(t, c, s)

	// The audit trail, every page of it, and the webhook's view of it, while the server runs.
	events := allEventPages(t, c, hookID)
	rcv.waitForAll(t, events.sent)
	for _, typ := range []string{"password.failed", "totp.failed", "recovery_code.failed", "recovery_code.replayed",
		"member.locked", "session.created", "session.revoked", "recovery_codes.read", "webhook.created"} {
		if events.types[typ] == 0 {
			t.Errorf("the audit trail has no %s event: the script did not exercise what it means to (%v)", typ, events.types)
		}
	}
	hooks := c.ok(t, http.MethodGet, "/sparekey/v1/webhooks", nil)
	deliveries := c.ok(t, http.MethodGet, "/sparekey/v1/webhooks/"+hookID+"/deliveries?limit=1000", nil)
	if n := len(deliveries.Body["deliveries"].([]any)); n != len(events.sent) {
		t.Errorf("the webhook lists %d deliveries, want one per event it is sent (%d)", n, len(events.sent))
	}

	// Snapshot the database files while the server still has them open: a clean shutdown
	// checkpoints the WAL into the main file, and what sat in the WAL matters as much.
	dataDir := filepath.Dir(db.Path)
	snapDir := t.TempDir()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		copyFile(t, db.Path+suffix, filepath.Join(snapDir, filepath.Base(db.Path)+suffix))
	}
	if fi, err := os.Stat(filepath.Join(snapDir, filepath.Base(db.Path)+"-wal")); err != nil || fi.Size() == 0 {
		t.Fatalf("the -wal file of the running server is missing or empty (%v): the WAL check would prove nothing", err)
	}

	if code := srv.Stop(t); code != 0 {
		t.Errorf("sparekey serve exited %d after SIGTERM, want 0", code)
	}

	var sources []source
	for _, dir := range []string{dataDir, snapDir} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			path := filepath.Join(dir, e.Name())
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			sources = append(sources, source{name: path, data: b})
		}
	}
	log := srv.Output()
	if !strings.Contains(log, `route="POST /v1/b2b/recovery_codes/recover"`) {
		t.Fatalf("the captured server output has no request line for recover; is the log captured at all?\n%s", log)
	}
	sources = append(sources, source{name: "the server's stdout and stderr", data: []byte(log)})

	// Every error body, each on its own so a match names the request.
	var refused int
	for _, a := range answers.all() {
		if a.isError() {
			refused++
			sources = append(sources, source{name: "the error body of " + a.what(), data: a.body})
		}
	}
	if refused < 30 {
		t.Errorf("the script collected %d error bodies; it makes over 30 refused calls", refused)
	}
	for i, page := range events.pages {
		sources = append(sources, source{name: fmt.Sprintf("page %d of the audit events", i+1), data: page})
	}
	sources = append(sources,
		source{name: "the webhook list", data: hooks.Raw},
		source{name: "the webhook's deliveries", data: deliveries.Raw})
	for i, req := range rcv.all() {
		sources = append(sources, source{name: fmt.Sprintf("webhook request %d as received", i+1), data: req})
	}

	t.Logf("looking for %d secret values in %d sources (%d error bodies, %d pages of %d events, %d webhook requests)",
		len(s.values), len(sources), refused, len(events.pages), len(events.ids), len(rcv.all()))
	for _, src := range sources {
		s.mustNotBeIn(t, src)
	}

	// The webhook secret is in its create response and in no other answer, success or not.
	var others int
	for _, a := range answers.all() {
		if a.method == http.MethodPost && a.path == "/sparekey/v1/webhooks" && a.status == http.StatusOK {
			continue
		}
		others++
		hook.mustNotBeIn(t, source{name: "the answer to " + a.what(), data: a.body})
	}
	t.Logf("the webhook secret is in none of %d other answers", others)
}

type source struct {
	name string
	data []byte
}

// lifeCycle drives three members through everything that hands out or takes in a secret,
// refused calls that carry one included, and records each secret in s.
func lifeCycle(t *testing.T, c *apiClient, s *secretList) {
	orgID := createOrganization(t, c, "Hygiene")

	// Alice: password login, TOTP, recovery codes, sessions.
	const alice = "alice@example.com"
	aliceID := createMember(t, c, orgID, alice)
	password := "pw-" + randomHex(t, 12) // unique, so a match cannot be a coincidence
	hash := bcryptHash(t, password)
	s.addText("the password", password)
	s.addText("the imported bcrypt hash", hash)
	migratePassword(t, c, orgID, alice, hash)

	wrongPassword := "wrong-" + randomHex(t, 12)
	s.addText("a wrong password", wrongPassword)
	r := c.do(t, http.MethodPost, "/v1/b2b/passwords/authenticate", passwordBody(orgID, alice, wrongPassword))
	wantError(t, r, "passwords/authenticate with a wrong password", 401, "unauthorized_credentials")
	strangerPassword := "stranger-" + randomHex(t, 12)
	s.addText("the password of an unknown address", strangerPassword)
	r = c.do(t, http.MethodPost, "/v1/b2b/passwords/authenticate", passwordBody(orgID, "nobody@example.com", strangerPassword))
	wantError(t, r, "passwords/authenticate of an unknown address", 401, "unauthorized_credentials")

	ist1 := passwordIST(t, c, orgID, alice, password)
	s.addText("IST 1", ist1)

	created := totpCreate(t, c, orgID, aliceID)
	secret := created.Str(t, "secret")
	s.addTOTPSecret("Alice's TOTP secret", secret)
	s.addText("Alice's TOTP QR code", created.Str(t, "qr_code"))
	codes := created.Strings(t, "recovery_codes")
	for i, code := range codes {
		s.addCode(fmt.Sprintf("issued recovery code %d", i+1), code)
	}

	totpCode, err := totp.Code(secret, totp.Step(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	// Refused TOTP codes. Six digits are too short to look for (they occur in any blob by
	// chance), so the wrong and the replayed code are sent for the events and errors they
	// make; the garbage and the recovery code sent as a TOTP code are looked for.
	garbageTOTP := "garbage-totp-" + randomHex(t, 8)
	s.addText("a garbage TOTP code", garbageTOTP)
	totpBody := func(code string, session map[string]any) map[string]any {
		body := map[string]any{"organization_id": orgID, "member_id": aliceID, "code": code}
		maps.Copy(body, session)
		return body
	}
	withIST1 := map[string]any{"intermediate_session_token": ist1}
	for _, tc := range []struct {
		name, code string
		status     int
		errorType  string
	}{
		{"a garbage code", garbageTOTP, 400, "invalid_totp_code"},
		{"an unused recovery code", codes[9], 400, "recovery_code_used_as_totp_code"},
		{"a wrong code", wrongTOTPCode(t, secret), 401, "unable_to_authenticate_totp"},
	} {
		r = c.do(t, http.MethodPost, "/v1/b2b/totp/authenticate", totpBody(tc.code, withIST1))
		wantError(t, r, "totp/authenticate with "+tc.name, tc.status, tc.errorType)
	}
	r = c.ok(t, http.MethodPost, "/v1/b2b/totp/authenticate", totpBody(totpCode, withIST1))
	session1 := r.Str(t, "session_token")
	s.addText("session token 1 (TOTP)", session1)
	jwt1 := r.Str(t, "session_jwt")
	s.addJWT("session JWT 1 (TOTP)", jwt1)

	ist2 := passwordIST(t, c, orgID, alice, password)
	s.addText("IST 2", ist2)
	r = c.do(t, http.MethodPost, "/v1/b2b/totp/authenticate", totpBody(totpCode, map[string]any{"intermediate_session_token": ist2}))
	wantError(t, r, "totp/authenticate with the code just accepted", 400, "totp_code_already_authenticated")

	// Refused intermediate sessions, each with an unused code: the session is judged first, so
	// the code stays unused (and must not be echoed either).
	madeUpIST := newToken(t)
	s.addText("a made-up IST", madeUpIST)
	garbageIST := "garbage-ist-" + randomHex(t, 8)
	s.addText("a garbage IST", garbageIST)
	for _, tc := range []struct{ name, ist string }{
		{"the IST consumed by TOTP", ist1},
		{"a made-up IST", madeUpIST},
		{"a garbage IST", garbageIST},
	} {
		r = c.do(t, http.MethodPost, "/v1/b2b/recovery_codes/recover", recoverBody(orgID, aliceID, codes[8], tc.ist))
		wantError(t, r, "recover with "+tc.name, 404, "intermediate_session_not_found")
	}
	garbageCode := "garbage-code-" + randomHex(t, 8)
	s.addText("a garbage recovery code", garbageCode)
	r = c.do(t, http.MethodPost, "/v1/b2b/recovery_codes/recover", recoverBody(orgID, aliceID, garbageCode, ist2))
	wantError(t, r, "recover with a garbage code", 400, "invalid_recovery_code")

	r = c.ok(t, http.MethodPost, "/v1/b2b/recovery_codes/recover", recoverBody(orgID, aliceID, codes[0], ist2))
	session2 := r.Str(t, "session_token")
	s.addText("session token 2 (recover)", session2)
	s.addJWT("session JWT 2 (recover)", r.Str(t, "session_jwt"))

	recoveryCodes(t, c, orgID, aliceID) // GET decrypts and sends the codes again

	r = c.ok(t, http.MethodPost, "/v1/b2b/sessions/authenticate", map[string]any{"session_token": session2})
	jwt3 := r.Str(t, "session_jwt")
	s.addJWT("session JWT 3 (sessions/authenticate by token)", jwt3)
	r = c.ok(t, http.MethodPost, "/v1/b2b/sessions/authenticate", map[string]any{"session_jwt": jwt3, "session_duration_minutes": 30})
	s.addJWT("session JWT 4 (sessions/authenticate by JWT)", r.Str(t, "session_jwt"))

	// Refused sessions: a made-up token, JWT 3 with a made-up signature, a garbage JWT.
	madeUpToken := newToken(t)
	s.addText("a made-up session token", madeUpToken)
	parts := strings.Split(jwt3, ".")
	forged := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString([]byte(randomHex(t, 128)))
	s.addJWT("JWT 3 with a made-up signature", forged)
	garbageJWT := "eyJnYXJiYWdl." + randomHex(t, 8) + ".garbage"
	s.addText("a garbage JWT", garbageJWT)
	for _, tc := range []struct {
		name      string
		body      map[string]any
		status    int
		errorType string
	}{
		{"a made-up session token", map[string]any{"session_token": madeUpToken}, 404, "session_not_found"},
		{"a forged JWT", map[string]any{"session_jwt": forged}, 400, "unable_to_parse_session_jwt"},
		{"a garbage JWT", map[string]any{"session_jwt": garbageJWT}, 400, "unable_to_parse_session_jwt"},
	} {
		r = c.do(t, http.MethodPost, "/v1/b2b/sessions/authenticate", tc.body)
		wantError(t, r, "sessions/authenticate with "+tc.name, tc.status, tc.errorType)
	}
	r = c.do(t, http.MethodPost, "/v1/b2b/recovery_codes/recover", map[string]any{
		"organization_id": orgID, "member_id": aliceID, "recovery_code": codes[8], "session_token": madeUpToken})
	wantError(t, r, "recover with a made-up session token", 404, "session_not_found")
	r = c.do(t, http.MethodPost, "/v1/b2b/totp/authenticate", totpBody(wrongTOTPCode(t, secret), map[string]any{"session_jwt": forged}))
	wantError(t, r, "totp/authenticate with a forged JWT", 400, "unable_to_parse_session_jwt")

	r = c.ok(t, http.MethodPost, "/v1/b2b/recovery_codes/rotate", map[string]any{"organization_id": orgID, "member_id": aliceID})
	rotated := r.Strings(t, "recovery_codes")
	if len(rotated) != 10 {
		t.Fatalf("rotate issued %d codes, want 10: %s", len(rotated), r.Raw)
	}
	for i, code := range rotated {
		s.addCode(fmt.Sprintf("rotated recovery code %d", i+1), code)
	}

	// Failed recovers: their input must not be logged either.
	ist3 := passwordIST(t, c, orgID, alice, password)
	s.addText("IST 3", ist3)
	guess := newRecoveryCode(t)
	s.addCode("a guessed recovery code", guess)
	for _, tc := range []struct{ name, code string }{
		{"a guessed code", guess},
		{"the spent code", codes[0]},
		{"the spent code, uppercase with spaces", strings.ToUpper(strings.ReplaceAll(codes[0], "-", " "))},
		{"a code of the rotated-away set", codes[5]},
	} {
		r = c.do(t, http.MethodPost, "/v1/b2b/recovery_codes/recover", recoverBody(orgID, aliceID, tc.code, ist3))
		wantError(t, r, "recover with "+tc.name, 401, "unable_to_authenticate_recovery_code")
	}
	r = c.ok(t, http.MethodPost, "/v1/b2b/recovery_codes/recover",
		recoverBody(orgID, aliceID, strings.ToUpper(strings.ReplaceAll(rotated[3], "-", "")), ist3))
	s.addText("session token 3 (recover after failures)", r.Str(t, "session_token"))
	s.addJWT("session JWT 3 (recover after failures)", r.Str(t, "session_jwt"))
	// The code just used, again: a replay, answered like a wrong code and audited as a replay.
	ist4 := passwordIST(t, c, orgID, alice, password)
	s.addText("IST 4", ist4)
	r = c.do(t, http.MethodPost, "/v1/b2b/recovery_codes/recover", recoverBody(orgID, aliceID, rotated[3], ist4))
	wantError(t, r, "recover with the code just used", 401, "unable_to_authenticate_recovery_code")

	// Bob: a TOTP registration and codes migrated from another system.
	bobID := createMember(t, c, orgID, "bob@example.com")
	key := make([]byte, 20)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	imported := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(key)
	s.addTOTPSecret("Bob's imported TOTP secret", imported)
	sent := strings.ToLower(imported[:16] + " " + imported[16:]) // as an app might display it
	s.addText("Bob's imported TOTP secret as sent", sent)
	var importedCodes []string
	for i := range 10 {
		code := newRecoveryCode(t)
		importedCodes = append(importedCodes, code)
		s.addCode(fmt.Sprintf("imported recovery code %d", i+1), code)
	}
	r = c.ok(t, http.MethodPost, "/v1/b2b/totp/migrate", map[string]any{
		"organization_id": orgID, "member_id": bobID, "secret": sent, "recovery_codes": importedCodes,
	})
	if got := r.Strings(t, "recovery_codes"); len(got) != len(importedCodes) {
		t.Fatalf("totp/migrate answered %d recovery codes, want the %d imported: %s", len(got), len(importedCodes), r.Raw)
	}
	recoveryCodes(t, c, orgID, bobID)

	// Carol: guessed codes until she is locked (DefaultConfig: 10), then her real code, which
	// the lock refuses without looking at it.
	const carol = "carol@example.com"
	carolID := createMember(t, c, orgID, carol)
	carolPassword := "pw-carol-" + randomHex(t, 12)
	s.addText("Carol's password", carolPassword)
	migratePassword(t, c, orgID, carol, bcryptHash(t, carolPassword))
	carolCodes := totpCreate(t, c, orgID, carolID).Strings(t, "recovery_codes")
	for i, code := range carolCodes {
		s.addCode(fmt.Sprintf("Carol's recovery code %d", i+1), code)
	}
	istCarol := passwordIST(t, c, orgID, carol, carolPassword)
	s.addText("Carol's IST", istCarol)
	for i := range 10 {
		guess := newRecoveryCode(t)
		s.addCode(fmt.Sprintf("Carol's guessed code %d", i+1), guess)
		r = c.do(t, http.MethodPost, "/v1/b2b/recovery_codes/recover", recoverBody(orgID, carolID, guess, istCarol))
		if i < 9 {
			wantError(t, r, fmt.Sprintf("Carol's guess %d", i+1), 401, "unable_to_authenticate_recovery_code")
		} else {
			wantError(t, r, "Carol's tenth guess", 429, "user_lock_limit_reached")
		}
	}
	r = c.do(t, http.MethodPost, "/v1/b2b/recovery_codes/recover", recoverBody(orgID, carolID, carolCodes[0], istCarol))
	wantError(t, r, "Carol's real code while she is locked", 429, "user_lock_limit_reached")

	// Revoke by token, then everything Alice still has; the ended sessions are refused after.
	c.ok(t, http.MethodPost, "/v1/b2b/sessions/revoke", map[string]any{"session_token": session1})
	c.ok(t, http.MethodPost, "/v1/b2b/sessions/revoke", map[string]any{"member_id": aliceID})
	r = c.ok(t, http.MethodGet, "/v1/b2b/sessions?organization_id="+orgID+"&member_id="+aliceID, nil)
	if v, _ := r.field("member_sessions"); v == nil || len(v.([]any)) != 0 {
		t.Errorf("Alice's sessions after revoking them all: %s, want member_sessions []", r.Raw)
	}
	for _, tc := range []struct {
		name, path string
		body       map[string]any
	}{
		{"authenticate with a revoked session token", "/v1/b2b/sessions/authenticate", map[string]any{"session_token": session1}},
		{"authenticate with a revoked session's JWT", "/v1/b2b/sessions/authenticate", map[string]any{"session_jwt": jwt1}},
		{"revoke a revoked session token", "/v1/b2b/sessions/revoke", map[string]any{"session_token": session2}},
	} {
		r = c.do(t, http.MethodPost, tc.path, tc.body)
		wantError(t, r, tc.name, 404, "session_not_found")
	}
}

// wrongCredentials makes calls with the project's id and a wrong secret, as someone guessing,
// through c's transport so their answers are collected with the rest.
func wrongCredentials(t *testing.T, c *apiClient, s *secretList) {
	wrong := *c
	wrong.secret = "secret-test-" + randomHex(t, 24)
	s.addText("a wrong project secret", wrong.secret)
	for _, call := range [][2]string{{http.MethodPost, "/v1/b2b/organizations/search"}, {http.MethodGet, "/sparekey/v1/events"}} {
		r := wrong.do(t, call[0], call[1], nil)
		wantError(t, r, call[0]+" "+call[1]+" with a wrong project secret", 401, "unauthorized_credentials")
	}
}

// wrongTOTPCode is a six-digit code that the server's window (the current step ±1, and the step
// after in case the clock moves on meanwhile) does not accept.
func wrongTOTPCode(t testing.TB, secret string) string {
	t.Helper()
	now := totp.Step(time.Now())
	accepted := map[string]bool{}
	for step := now - 1; step <= now+2; step++ {
		c, err := totp.Code(secret, step)
		if err != nil {
			t.Fatal(err)
		}
		accepted[c] = true
	}
	for {
		b := make([]byte, 4)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		c := fmt.Sprintf("%06d", binary.BigEndian.Uint32(b)%1_000_000)
		if !accepted[c] {
			return c
		}
	}
}

// newToken makes a value of the shape of a session token or IST (CONTRACT §4) that the server
// never issued.
func newToken(t testing.TB) string {
	t.Helper()
	b := make([]byte, 33)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// answerLog is the client's transport: it keeps every answer the server gave, body and all,
// and hands the response on unchanged.
type answerLog struct {
	next http.RoundTripper

	mu      sync.Mutex
	answers []answer
}

type answer struct {
	method, path string
	status       int
	body         []byte
}

func (a answer) what() string { return fmt.Sprintf("%s %s (HTTP %d)", a.method, a.path, a.status) }

// isError reports an error envelope (CONTRACT §8).
func (a answer) isError() bool {
	var body map[string]any
	if json.Unmarshal(a.body, &body) != nil {
		return a.status != http.StatusOK
	}
	_, has := body["error_type"]
	return has || a.status != http.StatusOK
}

func (l *answerLog) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answers = append(l.answers, answer{method: req.Method, path: req.URL.Path, status: resp.StatusCode, body: body})
	return resp, nil
}

func (l *answerLog) all() []answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.answers)
}

// eventPages is the audit trail as GET /sparekey/v1/events served it.
type eventPages struct {
	pages [][]byte // each page's raw body
	ids   []string
	sent  []string // the ids of the events the webhook is sent (sentTo)
	types map[string]int
}

// allEventPages reads every page of the project's events, a few to a page so the cursor is used;
// hookID is the webhook, registered first, that is sent them.
func allEventPages(t *testing.T, c *apiClient, hookID string) eventPages {
	t.Helper()
	out := eventPages{types: map[string]int{}}
	path := "/sparekey/v1/events?limit=25"
	for {
		r := c.ok(t, http.MethodGet, path, nil)
		out.pages = append(out.pages, r.Raw)
		events, _ := r.Body["events"].([]any)
		for _, e := range events {
			e, _ := e.(map[string]any)
			id, _ := e["event_id"].(string)
			typ, _ := e["type"].(string)
			out.ids = append(out.ids, id)
			if sentTo(e, hookID) {
				out.sent = append(out.sent, id)
			}
			out.types[typ]++
		}
		cursor, _ := r.Body["next_cursor"].(string)
		if cursor == "" {
			break
		}
		if len(out.pages) > 100 {
			t.Fatalf("more than 100 pages of events: the cursor does not advance")
		}
		path = "/sparekey/v1/events?limit=25&cursor=" + url.QueryEscape(cursor)
	}
	if len(out.pages) < 2 {
		t.Fatalf("the audit trail fits one page of 25 (%d events): the script is too short to page", len(out.ids))
	}
	return out
}

// hookCapture is a webhook endpoint in the test that keeps every request it gets, header lines
// and body as received, checks its signature and answers 204.
type hookCapture struct {
	*httptest.Server

	mu       sync.Mutex
	secret   string
	requests [][]byte
	eventIDs map[string]bool
	bad      []string
	notify   chan struct{}
}

func newHookCapture(t *testing.T) *hookCapture {
	h := &hookCapture{eventIDs: map[string]bool{}, notify: make(chan struct{}, 1)}
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.Close)
	return h
}

func (h *hookCapture) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	var dump bytes.Buffer
	req.Header.Write(&dump)
	dump.Write(body)
	h.mu.Lock()
	defer func() {
		h.mu.Unlock()
		select {
		case h.notify <- struct{}{}:
		default:
		}
	}()
	h.requests = append(h.requests, dump.Bytes())
	if err != nil {
		h.bad = append(h.bad, "read body: "+err.Error())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	p, err := client.ParseWebhook(h.secret, req.Header, body)
	if err != nil {
		h.bad = append(h.bad, err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	h.eventIDs[p.Data.EventID] = true
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookCapture) setSecret(s string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.secret = s
}

func (h *hookCapture) all() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.requests)
}

// waitForAll waits until every event of ids has reached the receiver signed right, or fails the
// test after 60 s: a bound on a hang, not a measure of speed.
func (h *hookCapture) waitForAll(t *testing.T, ids []string) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		h.mu.Lock()
		missing := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return h.eventIDs[id] })
		bad := slices.Clone(h.bad)
		h.mu.Unlock()
		for _, why := range bad {
			t.Fatalf("the receiver refused a webhook request: %s", why)
		}
		if len(missing) == 0 {
			return
		}
		select {
		case <-h.notify:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%d of %d events not delivered to the webhook after 60s", len(missing), len(ids))
		}
	}
}

// secretList is every secret value the script saw, with a label saying what it is.
type secretList struct {
	t      testing.TB
	labels []string
	values [][]byte
}

func (s *secretList) addBytes(label string, v []byte) {
	s.t.Helper()
	// An empty or tiny value would match anywhere: it means the script lost the value.
	if len(v) < 8 {
		s.t.Fatalf("%s is only %d bytes long (%q): the script did not capture it", label, len(v), v)
	}
	for _, have := range s.values {
		if bytes.Equal(have, v) {
			return
		}
	}
	s.labels = append(s.labels, label)
	s.values = append(s.values, bytes.Clone(v))
}

func (s *secretList) addText(label, v string) {
	s.t.Helper()
	s.addBytes(label, []byte(v))
}

// addCode records a recovery code as issued and normalised, each in both cases.
func (s *secretList) addCode(label, code string) {
	s.t.Helper()
	bare := strings.ReplaceAll(code, "-", "")
	s.addText(label+" (as issued)", code)
	s.addText(label+" (uppercase)", strings.ToUpper(code))
	s.addText(label+" (normalised)", strings.ToLower(bare))
	s.addText(label+" (normalised, uppercase)", strings.ToUpper(bare))
}

// addTOTPSecret records a base32 secret as shown, in lowercase, and its raw key bytes.
func (s *secretList) addTOTPSecret(label, b32 string) {
	s.t.Helper()
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(b32))
	if err != nil {
		s.t.Fatalf("%s %q is not base32: %v", label, b32, err)
	}
	s.addText(label+" (base32)", b32)
	s.addText(label+" (base32, lowercase)", strings.ToLower(b32))
	s.addBytes(label+" (raw key bytes)", raw)
}

// addJWT records the whole JWT and its signature. Its header is public and its payload
// legitimately holds ids the database also holds, so neither is a secret on its own.
func (s *secretList) addJWT(label, jwt string) {
	s.t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		s.t.Fatalf("%s %q is not a compact JWT", label, jwt)
	}
	s.addText(label, jwt)
	s.addText(label+" (signature)", parts[2])
}

// addWebhookSecret records a whsec_ secret, its base64 and its key bytes.
func (s *secretList) addWebhookSecret(whsec string) {
	s.t.Helper()
	b64, ok := strings.CutPrefix(whsec, "whsec_")
	key, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil {
		s.t.Fatalf("webhook secret %q is not whsec_ and base64", whsec)
	}
	s.addText("the webhook secret", whsec)
	s.addText("the webhook secret's base64", b64)
	s.addBytes("the webhook key", key)
}

// mustNotBeIn fails the test for every secret value src holds.
func (s *secretList) mustNotBeIn(t testing.TB, src source) {
	t.Helper()
	for i, v := range s.values {
		if at := bytes.Index(src.data, v); at >= 0 {
			t.Errorf("%s holds %s in plain text at byte %d", src.name, s.labels[i], at)
		}
	}
}

// newRecoveryCode makes a code of the shape sparekey issues (CONTRACT §6.1), for guesses and
// imports.
func newRecoveryCode(t testing.TB) string {
	t.Helper()
	const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[b[i]%32] // 256 is a multiple of 32: uniform
	}
	return string(b[0:4]) + "-" + string(b[4:8]) + "-" + string(b[8:12])
}

func wantError(t testing.TB, r apiResponse, what string, status int, errorType string) {
	t.Helper()
	if r.Status != status || r.ErrorType() != errorType {
		t.Fatalf("%s: HTTP %d %s, want %d %s: %s", what, r.Status, r.ErrorType(), status, errorType, r.Raw)
	}
}

// copyFile copies src to dst; a src that does not exist is skipped (SQLite may not have made
// it yet).
func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if os.IsNotExist(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

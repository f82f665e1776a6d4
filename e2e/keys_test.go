package e2e

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/secret"
	_ "github.com/sparekey/sparekey/internal/store/sqlite" // the "sqlite" database/sql driver
	"github.com/sparekey/sparekey/internal/totp"
)

// Key rotation without downtime, with real processes (README "Key rotation"): a signing key
// rotated while a server serves, and a master key rotated under traffic, killed halfway and
// finished by a second run.

// rotJWT is what the tests read of a session JWT: the header's kid and the iat claim.
type rotJWT struct {
	KID string
	IAT time.Time
}

func rotParseJWT(t testing.TB, jwt string) rotJWT {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	var h struct{ KID string }
	var c struct{ IAT int64 }
	for i, v := range []any{&h, &c} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	return rotJWT{KID: h.KID, IAT: time.Unix(c.IAT, 0)}
}

func rotJWKS(t testing.TB, srv *server, projectID string) []string {
	t.Helper()
	resp, err := http.Get(srv.URL + "/v1/b2b/sessions/jwks/" + projectID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Keys []struct{ KID string } }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET jwks: HTTP %d, %v", resp.StatusCode, err)
	}
	var out []string
	for _, k := range body.Keys {
		out = append(out, k.KID)
	}
	return out
}

// rotServerTime is the second at which the server answered, from the Date header: it wrote the
// header after it handled the request.
func rotServerTime(t testing.TB, r apiResponse) time.Time {
	t.Helper()
	d, err := http.ParseTime(r.Header.Get("Date"))
	if err != nil {
		t.Fatalf("Date header %q: %v", r.Header.Get("Date"), err)
	}
	return d
}

var rotatedKey = regexp.MustCompile(`added signing key (jwk-test-\S+): in the JWKS now, signing from (\S+); the key it replaces retires at (\S+)\n`)

// TestSigningKeyRotationWhileServing rotates the signing key under a running server with a
// 2 s publish delay and a 12 s grace (and a 1 s key cache). The new key is in the JWKS before any
// JWT names it; JWTs issued before its activation (by the server's own iat) carry the old kid and
// those issued from it on the new one; the old JWT keeps authenticating through the grace, and
// after the old key's retirement it is refused and the old key is gone from the JWKS. The
// boundaries are checked against the server's own clock (iat, Date), never against the test's.
func TestSigningKeyRotationWhileServing(t *testing.T) {
	db := newSQLite(t)
	p := createProject(t, db.URL, db.Env)
	srv := startServer(t, serverOptions{DB: db.URL, Env: db.Env, ProjectID: p.ID, Args: []string{"--signing-key-cache-ttl", "1s"}})
	c := srv.Client(p)
	orgID := createOrganization(t, c, "Rotation")
	const email = "rotation@example.com"
	memberID := createMember(t, c, orgID, email)
	migratePassword(t, c, orgID, email, bcryptHash(t, opsPassword))
	codes := totpCreate(t, c, orgID, memberID).Strings(t, "recovery_codes")
	login := c.ok(t, http.MethodPost, "/v1/b2b/recovery_codes/recover", recoverBody(orgID, memberID, codes[0], passwordIST(t, c, orgID, email, opsPassword)))
	token, oldJWT := login.Str(t, "session_token"), login.Str(t, "session_jwt")
	oldKID := rotParseJWT(t, oldJWT).KID
	if got := rotJWKS(t, srv, p.ID); !slices.Equal(got, []string{oldKID}) {
		t.Fatalf("JWKS before the rotation = %v, want [%s]", got, oldKID)
	}

	res := runSparekey(t, "", db.Env, "keys", "rotate-signing", "--db", db.URL,
		"--signing-key-publish-delay", "2s", "--signing-key-grace", "12s", "--unsafe-short-times")
	m := rotatedKey.FindStringSubmatch(res.Stdout)
	if res.ExitCode != 0 || m == nil {
		t.Fatalf("keys rotate-signing exited %d\nstdout: %s\nstderr: %s", res.ExitCode, res.Stdout, res.Stderr)
	}
	newKID := m[1]
	activates, err1 := time.Parse(time.RFC3339, m[2])
	retires, err2 := time.Parse(time.RFC3339, m[3])
	if err1 != nil || err2 != nil || retires.Sub(activates) != 12*time.Second {
		t.Fatalf("keys rotate-signing printed %q", res.Stdout)
	}

	var (
		sawBoth, sawNewSigning, sawGrace, sawRetired bool
		deadline                                     = time.Now().Add(2 * time.Minute)
	)
	for !sawRetired {
		if time.Now().After(deadline) {
			t.Fatalf("the old key did not retire within 2 minutes (both listed: %v, new key signing: %v, old JWT accepted in the grace: %v)", sawBoth, sawNewSigning, sawGrace)
		}
		jwks := rotJWKS(t, srv, p.ID)
		switch {
		case slices.Equal(jwks, []string{newKID, oldKID}):
			sawBoth = true
		case slices.Equal(jwks, []string{newKID}):
		case slices.Equal(jwks, []string{oldKID}) && !sawNewSigning:
		default:
			t.Fatalf("JWKS = %v (old %s, new %s)", jwks, oldKID, newKID)
		}

		// A fresh JWT: the old key's before the activation, the new key's from it on.
		fresh := rotParseJWT(t, c.ok(t, http.MethodPost, "/v1/b2b/sessions/authenticate", map[string]any{"session_token": token}).Str(t, "session_jwt"))
		switch {
		case fresh.KID == newKID && !slices.Contains(jwks, newKID):
			t.Fatalf("a JWT of %s was issued while the JWKS fetched just before did not list it: %v", newKID, jwks)
		case fresh.KID == oldKID && !fresh.IAT.Before(activates):
			t.Fatalf("a JWT issued at %s, at or after the new key's activation at %s, is signed with the old key", fresh.IAT, activates)
		case fresh.KID == newKID:
			sawNewSigning = true
		case fresh.KID != oldKID:
			t.Fatalf("a JWT signed with %s, neither %s nor %s", fresh.KID, oldKID, newKID)
		}

		// The JWT of the old key: accepted until its retirement, refused from it on.
		r := c.do(t, http.MethodPost, "/v1/b2b/sessions/authenticate", map[string]any{"session_jwt": oldJWT})
		switch {
		case r.Status == http.StatusOK:
			at := rotParseJWT(t, r.Str(t, "session_jwt")).IAT // the second the server checked it, or before
			if !at.Before(retires) {
				t.Fatalf("the old key's JWT was accepted at %s, after its retirement at %s", at, retires)
			}
			if !at.Before(activates) {
				sawGrace = true
			}
		case r.Status == http.StatusBadRequest && r.ErrorType() == "unable_to_parse_session_jwt":
			if at := rotServerTime(t, r); at.Before(retires) {
				t.Fatalf("the old key's JWT was refused at %s, before its retirement at %s: %s", at, retires, r.Raw)
			}
			sawRetired = true
		default:
			t.Fatalf("the old key's JWT: HTTP %d %s", r.Status, r.Raw)
		}
		time.Sleep(200 * time.Millisecond) // a poll interval, not an expiry: the server's clock decides
	}
	if !sawBoth || !sawNewSigning || !sawGrace {
		t.Errorf("saw both keys listed: %v, the new key signing: %v, the old JWT accepted while the new key signed: %v; want all", sawBoth, sawNewSigning, sawGrace)
	}
	if got := rotJWKS(t, srv, p.ID); !slices.Equal(got, []string{newKID}) {
		t.Errorf("JWKS after the retirement = %v, want [%s]", got, newKID)
	}
	// The session itself lives on: its token mints JWTs of the new key, which authenticate.
	fresh := c.ok(t, http.MethodPost, "/v1/b2b/sessions/authenticate", map[string]any{"session_token": token}).Str(t, "session_jwt")
	c.ok(t, http.MethodPost, "/v1/b2b/sessions/authenticate", map[string]any{"session_jwt": fresh})

	list := runSparekey(t, "", db.Env, "keys", "list", "--db", db.URL, "--json")
	var keys []struct{ KID, State string }
	if err := json.Unmarshal([]byte(list.Stdout), &keys); err != nil || list.ExitCode != 0 {
		t.Fatalf("keys list --json exited %d: %q %v", list.ExitCode, list.Stdout, err)
	}
	if len(keys) != 2 || keys[0].KID != newKID || keys[0].State != "signing" || keys[1].KID != oldKID || keys[1].State != "retired" {
		t.Errorf("keys list = %+v, want the new key signing and the old one retired", keys)
	}
}

// rotMember is a member of the master-key test with what it must still have after the rotation.
type rotMember struct {
	ID, Email, TOTPSecret string
	Codes                 []string // unused codes as GET must show them
}

// rotBackend is a database for the master-key test and how to read its sealed columns raw.
type rotBackend struct {
	name     string
	replicas int
	open     func(t *testing.T) database
	// keyIDs counts the values of every sealed column by the id of the master key that sealed
	// them (their first four bytes), reading the database directly.
	keyIDs func(t *testing.T, db database) map[uint32]int
}

// TestMasterKeyRotationUnderTraffic rotates the master key of a database sealed under OLD while
// servers run with --master-key NEW --old-master-keys OLD and members rotate codes and change
// passwords: `keys rotate-master` is SIGKILLed once its progress shows a table partly done,
// started again, and finishes. Then servers with NEW alone serve every member as before (GET
// shows the same codes, recover, TOTP and password work, JWTs issued before verify), and no
// value in the database is sealed under OLD.
func TestMasterKeyRotationUnderTraffic(t *testing.T) {
	for _, b := range []rotBackend{
		{name: "sqlite", replicas: 1, open: func(t *testing.T) database { return newSQLite(t) }, keyIDs: rotSQLiteKeyIDs},
		{name: "postgres", replicas: 2, open: func(t *testing.T) database {
			db := newPostgres(t)
			migratePostgres(t, db)
			return db
		}, keyIDs: rotPostgresKeyIDs},
	} {
		t.Run(b.name, func(t *testing.T) { masterKeyRotation(t, b) })
	}
}

func rotEnv(keys ...string) []string {
	env := cleanEnv()
	if len(keys) > 0 {
		env = append(env, "SPAREKEY_MASTER_KEY="+keys[0])
	}
	if len(keys) > 1 {
		env = append(env, "SPAREKEY_OLD_MASTER_KEYS="+strings.Join(keys[1:], ","))
	}
	return env
}

func rotKeyID(t testing.TB, hexKey string) uint32 {
	t.Helper()
	k, err := hex.DecodeString(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := secret.NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	return kr.PrimaryKeyID()
}

func masterKeyRotation(t *testing.T, b rotBackend) {
	const members = 300
	db := b.open(t)
	oldKey, newKey := db.MasterKey, randomHex(t, 32)
	oldID, newID := rotKeyID(t, oldKey), rotKeyID(t, newKey)
	p := createProject(t, db.URL, rotEnv(oldKey))

	// Data sealed under OLD, by a server that knows only OLD.
	before := startServer(t, serverOptions{DB: db.URL, Env: rotEnv(oldKey), ProjectID: p.ID})
	c := before.Client(p)
	orgID := createOrganization(t, c, "Master key rotation")
	hash := bcryptHash(t, opsPassword)
	all := make([]*rotMember, members)
	var (
		wg    sync.WaitGroup
		work  = make(chan int)
		errMu sync.Mutex
		errs  []error
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				m, err := rotEnroll(c, orgID, fmt.Sprintf("rot-%d@example.com", i), hash)
				if err != nil {
					errMu.Lock()
					errs = append(errs, err)
					errMu.Unlock()
				}
				all[i] = m
			}
		}()
	}
	for i := range members {
		work <- i
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("enrolling %d members: %d failed, first: %v", members, len(errs), errs[0])
	}
	// A session whose JWT, signed before the rotation, must verify after it.
	m0 := all[0]
	login := c.ok(t, http.MethodPost, "/v1/b2b/recovery_codes/recover", recoverBody(orgID, m0.ID, m0.Codes[0], passwordIST(t, c, orgID, m0.Email, opsPassword)))
	m0.Codes = m0.Codes[1:]
	oldJWT := login.Str(t, "session_jwt")
	before.Stop(t)
	if got := b.keyIDs(t, db); got[oldID] < 3*members || len(got) != 1 {
		t.Fatalf("sealed values before the rotation by key: %v, want all (%d or more) under the old key %08x", got, 3*members, oldID)
	}

	// The servers now seal under NEW and still open OLD.
	var clients []*apiClient
	var during []*server
	for range b.replicas {
		s := startServer(t, serverOptions{DB: db.URL, Env: rotEnv(newKey, oldKey), ProjectID: p.ID})
		during = append(during, s)
		clients = append(clients, s.Client(p))
	}

	// Traffic while the rotation runs: members 10..39 rotate their codes and change passwords,
	// which writes the columns being walked, on every replica in turn.
	stop := make(chan struct{})
	trafficDone := make(chan error, 1)
	go func() {
		trafficDone <- rotTraffic(clients, orgID, all[10:40], hash, stop)
	}()

	// The first run, with small batches and pauses, is killed once a table is partly done.
	first := exec.Command(sparekeyBin, "keys", "rotate-master", "--db", db.URL, "--batch-size", "10", "--batch-pause", "20ms")
	first.Env = rotEnv(newKey, oldKey)
	first.Dir = t.TempDir()
	stderr, err := first.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	partial := regexp.MustCompile(`^rotate-master: (\S+): (\d+)/(\d+) rows`)
	var progress []string
	killed := false
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		progress = append(progress, lines.Text())
		if m := partial.FindStringSubmatch(lines.Text()); m != nil {
			done, _ := strconv.Atoi(m[2])
			total, _ := strconv.Atoi(m[3])
			if done > 0 && done < total {
				_ = first.Process.Signal(syscall.SIGKILL)
				killed = true
				break
			}
		}
	}
	_, _ = io.Copy(io.Discard, stderr) // to the end: the process is dead, or ended by itself
	werr := first.Wait()
	if !killed {
		t.Fatalf("keys rotate-master showed no partly done table before it ended (%v):\n%s", werr, strings.Join(progress, "\n"))
	}
	t.Logf("killed keys rotate-master after: %s", progress[len(progress)-1])
	halfway := b.keyIDs(t, db)
	if halfway[newID] == 0 || halfway[oldID] == 0 {
		t.Fatalf("after the kill, sealed values by key: %v; want some under the new key %08x and some under the old %08x", halfway, newID, oldID)
	}

	// The second run finishes and verifies.
	res := runSparekey(t, "", rotEnv(newKey, oldKey), "keys", "rotate-master", "--db", db.URL, "--batch-size", "50")
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, fmt.Sprintf("every sealed value is under master key %08x and opens", newID)) {
		t.Fatalf("the second keys rotate-master exited %d\nstdout: %s\nstderr: %s", res.ExitCode, res.Stdout, res.Stderr)
	}
	if !regexp.MustCompile(`(?m)^rotate-master: totp_registrations\.sealed_secret: 300/300 rows \(\d+ re-sealed, \d+ changed meanwhile\) done$`).MatchString(res.Stderr) {
		t.Errorf("the second run's progress lacks the TOTP secrets' end:\n%s", res.Stderr)
	}
	close(stop)
	if err := <-trafficDone; err != nil {
		t.Fatalf("traffic during the rotation: %v", err)
	}
	for _, s := range during {
		s.Stop(t)
	}
	if got := b.keyIDs(t, db); got[oldID] != 0 || got[newID] < 3*members || len(got) != 1 {
		t.Fatalf("sealed values after the rotation by key: %v, want all under the new key %08x and none under the old %08x", got, newID, oldID)
	}

	// Servers with NEW alone.
	var after []*apiClient
	for range b.replicas {
		s := startServer(t, serverOptions{DB: db.URL, Env: rotEnv(newKey), ProjectID: p.ID})
		after = append(after, s.Client(p))
	}
	for i, m := range all {
		ac := after[i%len(after)]
		if got := recoveryCodes(t, ac, orgID, m.ID); !slices.Equal(got, m.Codes) {
			t.Fatalf("member %d: GET shows %v, want %v", i, got, m.Codes)
		}
	}
	ac := after[0]
	ac.ok(t, http.MethodPost, "/v1/b2b/sessions/authenticate", map[string]any{"session_jwt": oldJWT})
	for _, m := range []*rotMember{all[1], all[20], all[299]} { // untouched, rotated during, last
		r := ac.ok(t, http.MethodPost, "/v1/b2b/recovery_codes/recover", recoverBody(orgID, m.ID, m.Codes[0], passwordIST(t, ac, orgID, m.Email, opsPassword)))
		ac.ok(t, http.MethodPost, "/v1/b2b/sessions/authenticate", map[string]any{"session_jwt": r.Str(t, "session_jwt")})
		code, err := totp.Code(m.TOTPSecret, totp.Step(time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		ac.ok(t, http.MethodPost, "/v1/b2b/totp/authenticate", map[string]any{
			"organization_id": orgID, "member_id": m.ID, "code": code,
			"intermediate_session_token": passwordIST(t, ac, orgID, m.Email, opsPassword),
		})
	}
}

// rotEnroll creates a member with a password and a TOTP registration.
func rotEnroll(c *apiClient, orgID, email, hash string) (*rotMember, error) {
	r, err := c.call(http.MethodPost, "/v1/b2b/organizations/"+orgID+"/members", map[string]any{"email_address": email})
	if err != nil || r.Status != http.StatusOK {
		return nil, fmt.Errorf("create %s: %v %s", email, err, r.Raw)
	}
	m := &rotMember{Email: email}
	m.ID, _ = r.Body["member_id"].(string)
	if r, err = c.call(http.MethodPost, "/v1/b2b/passwords/migrate", map[string]any{"organization_id": orgID, "email_address": email, "hash": hash, "hash_type": "bcrypt"}); err != nil || r.Status != http.StatusOK {
		return nil, fmt.Errorf("password of %s: %v %s", email, err, r.Raw)
	}
	if r, err = c.call(http.MethodPost, "/v1/b2b/totp", map[string]any{"organization_id": orgID, "member_id": m.ID}); err != nil || r.Status != http.StatusOK {
		return nil, fmt.Errorf("TOTP of %s: %v %s", email, err, r.Raw)
	}
	m.TOTPSecret, _ = r.Body["secret"].(string)
	m.Codes = rotStrings(r.Body["recovery_codes"])
	if m.ID == "" || m.TOTPSecret == "" || len(m.Codes) != 10 {
		return nil, fmt.Errorf("enrolling %s: %s", email, r.Raw)
	}
	return m, nil
}

func rotStrings(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

// rotTraffic rotates the members' codes and re-imports their passwords, round-robin over the
// clients, until stop (at most 2000 requests), keeping each member's Codes up to date.
func rotTraffic(clients []*apiClient, orgID string, ms []*rotMember, hash string, stop <-chan struct{}) error {
	for i := 0; i < 2000; i++ {
		select {
		case <-stop:
			return nil
		default:
		}
		m, c := ms[i%len(ms)], clients[i%len(clients)]
		if i%2 == 0 {
			r, err := c.call(http.MethodPost, "/v1/b2b/recovery_codes/rotate", map[string]any{"organization_id": orgID, "member_id": m.ID})
			if err != nil || r.Status != http.StatusOK {
				return fmt.Errorf("rotate of %s: %v %s", m.ID, err, r.Raw)
			}
			m.Codes = rotStrings(r.Body["recovery_codes"])
		} else {
			r, err := c.call(http.MethodPost, "/v1/b2b/passwords/migrate", map[string]any{"organization_id": orgID, "email_address": m.Email, "hash": hash, "hash_type": "bcrypt"})
			if err != nil || r.Status != http.StatusOK {
				return fmt.Errorf("password of %s: %v %s", m.ID, err, r.Raw)
			}
		}
		time.Sleep(5 * time.Millisecond) // traffic, not a flood: the rotation must make progress
	}
	return nil
}

// rotSealedColumns splits every sealed column auth rotates into table and column; the
// identifiers come from the code, never from input.
func rotSealedColumns() [][2]string {
	var out [][2]string
	for _, c := range auth.SealedColumns() {
		table, column, _ := strings.Cut(string(c), ".")
		out = append(out, [2]string{table, column})
	}
	return out
}

func rotCount(t *testing.T, rows interface {
	Next() bool
	Scan(...any) error
	Err() error
}, into map[uint32]int) {
	t.Helper()
	for rows.Next() {
		var prefix []byte
		if err := rows.Scan(&prefix); err != nil {
			t.Fatal(err)
		}
		if len(prefix) != 4 {
			t.Fatalf("a sealed value shorter than its key id: %x", prefix)
		}
		into[binary.BigEndian.Uint32(prefix)]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

func rotSQLiteKeyIDs(t *testing.T, db database) map[uint32]int {
	t.Helper()
	conn, err := sql.Open("sqlite", "file:"+db.Path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	out := map[uint32]int{}
	for _, tc := range rotSealedColumns() {
		rows, err := conn.QueryContext(context.Background(), fmt.Sprintf(`SELECT substr(%s, 1, 4) FROM %s WHERE %s IS NOT NULL`, tc[1], tc[0], tc[1]))
		if err != nil {
			t.Fatal(err)
		}
		rotCount(t, rows, out)
		rows.Close()
	}
	return out
}

func rotPostgresKeyIDs(t *testing.T, db database) map[uint32]int {
	t.Helper()
	conn := queryPostgres(t, db)
	out := map[uint32]int{}
	for _, tc := range rotSealedColumns() {
		rows, err := conn.Query(context.Background(), fmt.Sprintf(`SELECT substring(%s from 1 for 4) FROM %s WHERE %s IS NOT NULL`, tc[1], tc[0], tc[1]))
		if err != nil {
			t.Fatal(err)
		}
		rotCount(t, rows, out)
		rows.Close()
	}
	return out
}

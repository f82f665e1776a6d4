package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/totp"
)

// TestNoSecretInDatabaseOrLog runs a scripted life cycle against a server at --log-level debug
// and then looks for every secret that crossed the wire, byte for byte, in the SQLite file,
// its -wal and -shm (copied while the server ran, and as left after SIGTERM) and in everything
// the server printed (DESIGN §2: codes and secrets are stored encrypted or as digests, and the
// plaintext never reaches a log).
func TestNoSecretInDatabaseOrLog(t *testing.T) {
	db := newSQLite(t)
	// Created before serve starts, so serve has no first-start banner to print: the project
	// secret must then never appear in its output.
	p := createProject(t, db.URL, db.Env)
	srv := startServer(t, serverOptions{DB: db.URL, Env: db.Env, Args: []string{"--log-level", "debug"}, ProjectID: p.ID})
	c := srv.Client(p)

	s := &secretList{t: t}
	masterKey, err := hex.DecodeString(db.MasterKey)
	if err != nil {
		t.Fatal(err)
	}
	s.addText("master key (hex)", db.MasterKey)
	s.addBytes("master key (raw bytes)", masterKey)
	s.addText("project secret", p.Secret)

	lifeCycle(t, c, s)

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

	t.Logf("looking for %d secret values in %d sources", len(s.values), len(sources))
	for _, src := range sources {
		for i, v := range s.values {
			if at := bytes.Index(src.data, v); at >= 0 {
				t.Errorf("%s holds %s in plain text at byte %d", src.name, s.labels[i], at)
			}
		}
	}
}

type source struct {
	name string
	data []byte
}

// lifeCycle drives two members through everything that hands out or takes in a secret and
// records each secret in s.
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
	r = c.ok(t, http.MethodPost, "/v1/b2b/totp/authenticate", map[string]any{
		"organization_id": orgID, "member_id": aliceID, "code": totpCode, "intermediate_session_token": ist1,
	})
	session1 := r.Str(t, "session_token")
	s.addText("session token 1 (TOTP)", session1)
	s.addJWT("session JWT 1 (TOTP)", r.Str(t, "session_jwt"))

	ist2 := passwordIST(t, c, orgID, alice, password)
	s.addText("IST 2", ist2)
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

	// Revoke by token, then everything Alice still has.
	c.ok(t, http.MethodPost, "/v1/b2b/sessions/revoke", map[string]any{"session_token": session1})
	c.ok(t, http.MethodPost, "/v1/b2b/sessions/revoke", map[string]any{"member_id": aliceID})
	r = c.ok(t, http.MethodGet, "/v1/b2b/sessions?organization_id="+orgID+"&member_id="+aliceID, nil)
	if v, _ := r.field("member_sessions"); v == nil || len(v.([]any)) != 0 {
		t.Errorf("Alice's sessions after revoking them all: %s, want member_sessions []", r.Raw)
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

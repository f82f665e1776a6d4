package auth_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/secret"
	"github.com/sparekey/sparekey/internal/store/sqlite"
	"github.com/sparekey/sparekey/internal/store/testdb"
	"github.com/sparekey/sparekey/internal/totp"
)

// Key rotation as the Service does it, on a real SQLite file with an injected clock: signing
// keys are published before they sign and refused once retired (§7), on this replica and on
// another one with a warm cache; master-key rotation re-seals everything, survives an
// interruption and never overwrites a concurrent write.

// rotationStore is the real SQLite store. beforeReplace, when set, runs just before each
// ReplaceSealedValues until it returns true, to write what a concurrent request would between
// Reseal's read and its write.
type rotationStore struct {
	*sqlite.DB
	beforeReplace func(column auth.SealedColumn, rs []auth.SealedReplacement) (done bool)
}

func (r *rotationStore) ReplaceSealedValues(ctx context.Context, column auth.SealedColumn, rs []auth.SealedReplacement) (int, error) {
	if h := r.beforeReplace; h != nil && h(column, rs) {
		r.beforeReplace = nil
	}
	return r.DB.ReplaceSealedValues(ctx, column, rs)
}

// rotationFixture is a project on a temp SQLite file with an organization that requires MFA.
type rotationFixture struct {
	store *rotationStore
	clock *testClock
	old   []byte // the master key the data is first sealed under
	svc   *auth.Service
	pid   string
	org   auth.Organization
	hash  string
}

func newMasterKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, secret.MasterKeySize)
	rand.Read(k)
	return k
}

func newRotationFixture(t *testing.T) *rotationFixture {
	t.Helper()
	db := testdb.SQLite(t)
	h, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	must(t, err)
	f := &rotationFixture{
		store: &rotationStore{DB: db},
		clock: &testClock{now: time.Date(2026, time.March, 1, 9, 30, 0, 0, time.UTC)},
		old:   newMasterKey(t),
		hash:  string(h),
	}
	f.svc = f.service(t, f.old)
	p, _, err := f.svc.CreateProject(context.Background())
	must(t, err)
	f.pid = p.ID
	name, policy := "Acme", auth.MFAPolicyRequiredForAll
	f.org, err = f.svc.CreateOrganization(context.Background(), f.pid, auth.OrganizationInput{Name: &name, MFAPolicy: &policy})
	must(t, err)
	return f
}

// service is another replica on the fixture's store and clock, whose keyring seals under
// primary and also opens under older.
func (f *rotationFixture) service(t *testing.T, primary []byte, older ...[]byte) *auth.Service {
	t.Helper()
	keys, err := secret.NewKeyring(primary, older...)
	must(t, err)
	svc, err := auth.NewService(f.store, keys, auth.DefaultConfig(), f.clock.Now)
	must(t, err)
	return svc
}

// rotationMember is an enrolled member: a password, a TOTP registration and its codes.
type rotationMember struct {
	ref        auth.MemberRef
	email      string
	totpSecret string
	codes      []string
}

func (f *rotationFixture) enroll(t *testing.T, svc *auth.Service, i int) rotationMember {
	t.Helper()
	ctx := context.Background()
	email := fmt.Sprintf("member-%d@example.com", i)
	out, err := svc.MigratePassword(ctx, f.pid, auth.MigratePasswordInput{OrganizationID: f.org.ID, EmailAddress: email, Hash: f.hash, HashType: "bcrypt"})
	must(t, err)
	ref := auth.MemberRef{OrganizationID: f.org.ID, MemberID: out.Member.ID}
	enr, err := svc.CreateTOTP(ctx, f.pid, auth.CreateTOTPInput{MemberRef: ref})
	must(t, err)
	return rotationMember{ref: ref, email: email, totpSecret: enr.Secret, codes: enr.RecoveryCodes}
}

// ist logs in with the password and returns the intermediate session token MFA needs.
func (f *rotationFixture) ist(t *testing.T, svc *auth.Service, m rotationMember) string {
	t.Helper()
	a, err := svc.AuthenticatePassword(context.Background(), f.pid, auth.AuthenticatePasswordInput{OrganizationID: f.org.ID, EmailAddress: m.email, Password: testPassword})
	must(t, err)
	if a.IntermediateSessionToken == "" {
		t.Fatal("password authenticate in a REQUIRED_FOR_ALL organization gave no intermediate session token")
	}
	return a.IntermediateSessionToken
}

// login completes an MFA login with the member's next unused recovery code.
func (f *rotationFixture) login(t *testing.T, svc *auth.Service, m *rotationMember) auth.Authenticated {
	t.Helper()
	a, err := svc.Recover(context.Background(), f.pid, auth.RecoverInput{MemberRef: m.ref, RecoveryCode: m.codes[0], SessionArgs: auth.SessionArgs{IntermediateSessionToken: f.ist(t, svc, *m)}})
	must(t, err)
	m.codes = m.codes[1:]
	return a
}

// kidOf is the kid in a JWT's header.
func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.SplitN(jwt, ".", 2)[0])
	must(t, err)
	var h struct{ KID string }
	must(t, json.Unmarshal(b, &h))
	return h.KID
}

func jwksKIDs(t *testing.T, svc *auth.Service, pid string) []string {
	t.Helper()
	keys, err := svc.JWKS(context.Background(), pid)
	must(t, err)
	var out []string
	for _, k := range keys {
		out = append(out, k.KID)
	}
	return out
}

func states(t *testing.T, svc *auth.Service, pid string) map[string]auth.SigningKeyState {
	t.Helper()
	keys, err := svc.SigningKeys(context.Background(), pid)
	must(t, err)
	out := map[string]auth.SigningKeyState{}
	for _, k := range keys {
		out[k.KID] = k.State
	}
	return out
}

// TestSigningKeyRotation walks one rotation through time on two replicas: the one that rotated
// and one whose cache was loaded before. A new key is listed at once, signs only from its
// ActivatesAt, and the old key verifies until its RetiresAt, then is gone: JWTs naming it are
// unable_to_parse_session_jwt. Activation and retirement take effect on the second, whatever the
// age of a replica's cache.
func TestSigningKeyRotation(t *testing.T) {
	f := newRotationFixture(t)
	other := f.service(t, f.old) // a second replica, same database
	ctx := context.Background()
	m := f.enroll(t, f.svc, 1)
	first := f.login(t, f.svc, &m)
	oldKID := kidOf(t, first.SessionJWT)
	if got := jwksKIDs(t, other, f.pid); !slices.Equal(got, []string{oldKID}) {
		t.Fatalf("JWKS before the rotation = %v, want [%s]", got, oldKID)
	}
	authenticate := func(svc *auth.Service, jwt string) (string, error) {
		a, err := svc.AuthenticateSession(ctx, f.pid, auth.AuthenticateSessionInput{SessionJWT: jwt})
		return a.SessionJWT, err
	}

	t0 := f.clock.Now().UTC().Truncate(time.Second)
	key, err := f.svc.RotateSigningKey(ctx, f.pid, 2*time.Minute, 15*time.Minute)
	must(t, err)
	newKID := key.KID
	if !key.ActivatesAt.Equal(t0.Add(2*time.Minute)) || !key.RetiresAt.IsZero() || !key.CreatedAt.Equal(t0) {
		t.Errorf("new key: created %v, activates %v, retires %v; want %v, %v, none", key.CreatedAt, key.ActivatesAt, key.RetiresAt, t0, t0.Add(2*time.Minute))
	}

	type step struct {
		at          time.Duration // after the rotation
		jwks        []string      // on the replica that rotated
		otherJWKS   []string      // on the other replica (its cache is up to a minute old)
		signs       string
		oldVerifies bool
		states      map[string]auth.SigningKeyState
	}
	pending := map[string]auth.SigningKeyState{newKID: auth.SigningKeyPending, oldKID: auth.SigningKeySigning}
	switched := map[string]auth.SigningKeyState{newKID: auth.SigningKeySigning, oldKID: auth.SigningKeyVerifying}
	retired := map[string]auth.SigningKeyState{newKID: auth.SigningKeySigning, oldKID: auth.SigningKeyRetired}
	for _, s := range []step{
		// Published at once by the replica that rotated; the other still has its cached list.
		{0, []string{newKID, oldKID}, []string{oldKID}, oldKID, true, pending},
		// Within its key cache TTL the other replica reloads and lists the pending key too.
		{90 * time.Second, []string{newKID, oldKID}, []string{newKID, oldKID}, oldKID, true, pending},
		{2*time.Minute - time.Second, []string{newKID, oldKID}, []string{newKID, oldKID}, oldKID, true, pending},
		// It signs from ActivatesAt, on both, though the other loaded the keys 30 s before.
		{2 * time.Minute, []string{newKID, oldKID}, []string{newKID, oldKID}, newKID, true, switched},
		{17*time.Minute - time.Second, []string{newKID, oldKID}, []string{newKID, oldKID}, newKID, true, switched},
		// Retired at ActivatesAt + grace, on both, though the other loaded the keys 1 s before.
		{17 * time.Minute, []string{newKID}, []string{newKID}, newKID, false, retired},
		{30 * time.Minute, []string{newKID}, []string{newKID}, newKID, false, retired},
	} {
		f.clock.Add(t0.Add(s.at).Sub(f.clock.Now()))
		if got := jwksKIDs(t, f.svc, f.pid); !slices.Equal(got, s.jwks) {
			t.Errorf("+%s: JWKS = %v, want %v", s.at, got, s.jwks)
		}
		if got := jwksKIDs(t, other, f.pid); !slices.Equal(got, s.otherJWKS) {
			t.Errorf("+%s: the other replica's JWKS = %v, want %v", s.at, got, s.otherJWKS)
		}
		for name, svc := range map[string]*auth.Service{"rotating replica": f.svc, "other replica": other} {
			fresh, err := authenticate(svc, first.SessionJWT)
			switch {
			case s.oldVerifies && err != nil:
				t.Errorf("+%s, %s: a JWT of the old key: %v, want it to authenticate", s.at, name, err)
			case !s.oldVerifies && auth.TypeOf(err) != auth.ErrUnparseableJWT.Type:
				t.Errorf("+%s, %s: a JWT of the retired key: %v, want %s", s.at, name, err, auth.ErrUnparseableJWT.Type)
			}
			// Every replica signs with the same key at the same second.
			if err == nil && kidOf(t, fresh) != s.signs {
				t.Errorf("+%s, %s: a fresh JWT is signed with %s, want %s", s.at, name, kidOf(t, fresh), s.signs)
			}
		}
		a := f.login(t, f.svc, &m)
		if kidOf(t, a.SessionJWT) != s.signs {
			t.Errorf("+%s: a new session's JWT is signed with %s, want %s", s.at, kidOf(t, a.SessionJWT), s.signs)
		}
		// A JWT of the signing key verifies on the other replica, whatever its cache holds.
		if _, err := authenticate(other, a.SessionJWT); err != nil {
			t.Errorf("+%s: the other replica refuses a JWT of %s: %v", s.at, s.signs, err)
		}
		if got := states(t, f.svc, f.pid); !mapsEqual(got, s.states) {
			t.Errorf("+%s: key states %v, want %v", s.at, got, s.states)
		}
	}

	// The next rotation deletes the key retired before it; the one it replaces retires.
	f.clock.Add(t0.Add(time.Hour).Sub(f.clock.Now()))
	third, err := f.svc.RotateSigningKey(ctx, f.pid, time.Minute, 10*time.Minute)
	must(t, err)
	keys, err := f.svc.SigningKeys(ctx, f.pid)
	must(t, err)
	if len(keys) != 2 || keys[0].KID != third.KID || keys[1].KID != newKID || !keys[1].RetiresAt.Equal(t0.Add(71*time.Minute)) {
		t.Errorf("after a second rotation: %+v, want the third key and the second, retiring at +71m", keys)
	}
}

func mapsEqual[K, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestRotateSigningKeyRefusals: negative durations and unknown projects change nothing.
func TestRotateSigningKeyRefusals(t *testing.T) {
	f := newRotationFixture(t)
	ctx := context.Background()
	if _, err := f.svc.RotateSigningKey(ctx, f.pid, -time.Second, time.Minute); err == nil {
		t.Error("a negative publish delay: no error")
	}
	if _, err := f.svc.RotateSigningKey(ctx, f.pid, time.Minute, -time.Minute); err == nil {
		t.Error("a negative grace: no error")
	}
	if _, err := f.svc.RotateSigningKey(ctx, "project-test-00000000-0000-4000-8000-000000000000", time.Minute, time.Minute); auth.TypeOf(err) != auth.ErrProjectNotFound.Type {
		t.Errorf("an unknown project: %v, want %s", err, auth.ErrProjectNotFound.Type)
	}
	if got := jwksKIDs(t, f.svc, f.pid); len(got) != 1 {
		t.Errorf("JWKS after refused rotations = %v, want the one key", got)
	}
}

// TestCheckMasterKeyWithOldKeys: data sealed under the old key is accepted by a keyring that
// holds it, primary or not, and refused, naming both key ids, by one that does not.
func TestCheckMasterKeyWithOldKeys(t *testing.T) {
	f := newRotationFixture(t)
	ctx := context.Background()
	newKey := newMasterKey(t)
	oldID, newID := keyID(t, f.old), keyID(t, newKey)

	err := f.service(t, newKey).CheckMasterKey(ctx)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%08x", oldID)) || !strings.Contains(err.Error(), fmt.Sprintf("%08x", newID)) {
		t.Errorf("CheckMasterKey with the new key alone: %v, want a refusal naming %08x and %08x", err, oldID, newID)
	}
	must(t, f.service(t, newKey, f.old).CheckMasterKey(ctx))
	must(t, f.service(t, f.old, newKey).CheckMasterKey(ctx)) // the first step of a rotation on many replicas

	must(t, f.service(t, newKey, f.old).Reseal(ctx, auth.ResealOptions{}))
	must(t, f.service(t, newKey).CheckMasterKey(ctx))
	if err := f.service(t, f.old).CheckMasterKey(ctx); err == nil {
		t.Error("CheckMasterKey with the old key after the rotation: no error")
	}
}

func keyID(t *testing.T, key []byte) uint32 {
	t.Helper()
	kr, err := secret.NewKeyring(key)
	must(t, err)
	return kr.PrimaryKeyID()
}

// TestReseal rotates the master key of a database in use: interrupted halfway and run again,
// with a member changing password between a batch's read and its write (on a replica still
// sealing under the old key). Afterwards a server with the new key alone serves every member as
// before, and CheckSealed finds nothing left under the old key.
func TestReseal(t *testing.T) {
	f := newRotationFixture(t)
	ctx := context.Background()
	const n = 23
	members := make([]rotationMember, n)
	for i := range members {
		members[i] = f.enroll(t, f.svc, i)
	}
	before := f.login(t, f.svc, &members[0])
	url := "https://hooks.example.com/sparekey"
	_, _, err := f.svc.CreateWebhook(ctx, f.pid, auth.CreateWebhookInput{URL: &url})
	must(t, err)

	newKey := newMasterKey(t)
	oldID, newID := keyID(t, f.old), keyID(t, newKey)
	rotating := f.service(t, newKey, f.old)

	// A first run is interrupted in the second batch of the TOTP secrets.
	runCtx, cancel := context.WithCancel(ctx)
	var seen []auth.ResealProgress
	err = rotating.Reseal(runCtx, auth.ResealOptions{BatchSize: 5, Pause: time.Millisecond, Progress: func(p auth.ResealProgress) {
		seen = append(seen, p)
		if p.Column == auth.SealedTOTPSecret && p.Done == 10 {
			cancel()
		}
	}})
	if err == nil {
		t.Fatal("Reseal with its context cancelled halfway: no error")
	}
	reports, err := rotating.CheckSealed(ctx, 7)
	must(t, err)
	secrets := report(reports, auth.SealedTOTPSecret)
	if secrets.ByKey[newID] != 10 || secrets.ByKey[oldID] != n-10 || secrets.Unopenable != 0 {
		t.Errorf("TOTP secrets after the interruption: %v, want 10 under the new key and %d under the old", secrets.ByKey, n-10)
	}
	if got := report(reports, auth.SealedProjectPepper); got.ByKey[oldID] != 1 {
		t.Errorf("peppers after the interruption: %v, want the old key's: peppers go last", got.ByKey)
	}
	wantProgress := auth.ResealProgress{Column: auth.SealedTOTPSecret, Total: n, Done: 10, Resealed: 10}
	if last := seen[len(seen)-1]; last != wantProgress {
		t.Errorf("last progress before the interruption %+v, want %+v", last, wantProgress)
	}

	// The second run: a member of the passwords' first batch changes password between the
	// batch's read and its write, on a replica that still seals under the old key.
	stale := f.service(t, f.old, newKey)
	var changed *rotationMember
	f.store.beforeReplace = func(column auth.SealedColumn, rs []auth.SealedReplacement) bool {
		if column != auth.SealedPassword {
			return false
		}
		for i := range members {
			if members[i].ref.MemberID == rs[0].Row { // a password row's key is its member's id
				changed = &members[i]
			}
		}
		if changed == nil {
			t.Fatalf("the passwords' first batch starts with row %s, not a member's id", rs[0].Row)
		}
		_, err := stale.MigratePassword(ctx, f.pid, auth.MigratePasswordInput{OrganizationID: f.org.ID, EmailAddress: changed.email, Hash: f.hash, HashType: "bcrypt"})
		must(t, err)
		return true
	}
	seen = nil
	must(t, rotating.Reseal(ctx, auth.ResealOptions{BatchSize: 5, Progress: func(p auth.ResealProgress) { seen = append(seen, p) }}))
	finished := map[auth.SealedColumn]auth.ResealProgress{}
	for _, p := range seen {
		if p.Finished {
			finished[p.Column] = p
		}
	}
	if p := finished[auth.SealedTOTPSecret]; p.Done != n || p.Resealed != n-10 {
		t.Errorf("the second run's TOTP secrets: %+v, want %d walked, %d re-sealed (the rest already were)", p, n, n-10)
	}
	if p := finished[auth.SealedPassword]; p.Done != n || p.Resealed != n-1 || p.Changed != 1 {
		t.Errorf("the second run's passwords: %+v, want %d walked, %d re-sealed, 1 changed meanwhile", p, n, n-1)
	}
	if len(finished) != len(auth.SealedColumns()) {
		t.Errorf("finished columns %v, want all of %v", finished, auth.SealedColumns())
	}

	// The concurrent write was not overwritten: it is still under the old key, and the check
	// says so. A third run moves it.
	reports, err = rotating.CheckSealed(ctx, 100)
	must(t, err)
	if got := report(reports, auth.SealedPassword); got.Stale(newID) != 1 || got.ByKey[oldID] != 1 {
		t.Errorf("passwords after the run with a concurrent write: %v, want exactly the one written under the old key", got.ByKey)
	}
	must(t, rotating.Reseal(ctx, auth.ResealOptions{BatchSize: 5}))
	reports, err = rotating.CheckSealed(ctx, 100)
	must(t, err)
	for _, r := range reports {
		if r.Stale(newID) != 0 || r.Unopenable != 0 || r.Values == 0 {
			t.Errorf("%s after the rotation: %d values, by key %v, %d unopenable; want all under %08x", r.Column, r.Values, r.ByKey, r.Unopenable, newID)
		}
	}

	// A server with the new key alone: everything works as before.
	after := f.service(t, newKey)
	must(t, after.CheckMasterKey(ctx))
	for i := range members {
		m := &members[i]
		got, err := after.GetRecoveryCodes(ctx, f.pid, m.ref)
		must(t, err)
		if !slices.Equal(got.Codes, m.codes) {
			t.Errorf("member %d: codes %v, want %v", i, got.Codes, m.codes)
		}
	}
	if _, err := after.AuthenticateSession(ctx, f.pid, auth.AuthenticateSessionInput{SessionJWT: before.SessionJWT}); err != nil {
		t.Errorf("a JWT minted before the rotation: %v", err)
	}
	a := f.login(t, after, &members[1]) // password, recovery code, a JWT signed by the re-sealed key
	if _, err := after.AuthenticateSession(ctx, f.pid, auth.AuthenticateSessionInput{SessionJWT: a.SessionJWT}); err != nil {
		t.Errorf("a JWT minted after the rotation: %v", err)
	}
	code, err := totp.Code(members[2].totpSecret, totp.Step(f.clock.Now()))
	must(t, err)
	if _, err := after.AuthenticateTOTP(ctx, f.pid, auth.AuthenticateTOTPInput{MemberRef: members[2].ref, Code: code, SessionArgs: auth.SessionArgs{IntermediateSessionToken: f.ist(t, after, members[2])}}); err != nil {
		t.Errorf("TOTP authenticate after the rotation: %v", err)
	}
	if changed == &members[1] || changed == &members[2] {
		changed.codes = changed.codes[1:] // a recovery code already spent
	}
	f.login(t, after, changed) // the password written during the rotation
	if err := f.service(t, f.old).CheckMasterKey(ctx); err == nil {
		t.Error("the old key alone still opens the database after the rotation")
	}
}

// TestResealRefusesUnknownKeys: a value sealed under a key the keyring does not hold stops the
// walk with the column, row and key id, before anything of that column is written.
func TestResealRefusesUnknownKeys(t *testing.T) {
	f := newRotationFixture(t)
	ctx := context.Background()
	f.enroll(t, f.svc, 1)
	newKey := newMasterKey(t)
	err := f.service(t, newKey, newMasterKey(t)).Reseal(ctx, auth.ResealOptions{})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%08x", keyID(t, f.old))) || !strings.Contains(err.Error(), string(auth.SealedSigningKey)) {
		t.Errorf("Reseal without the old key: %v, want a refusal naming the column and key %08x", err, keyID(t, f.old))
	}
	reports, err := f.service(t, f.old).CheckSealed(ctx, 0)
	must(t, err)
	for _, r := range reports {
		if r.Stale(keyID(t, f.old)) != 0 {
			t.Errorf("%s: %v, want every value still under the old key", r.Column, r.ByKey)
		}
	}
}

func report(rs []auth.SealedReport, c auth.SealedColumn) auth.SealedReport {
	for _, r := range rs {
		if r.Column == c {
			return r
		}
	}
	return auth.SealedReport{}
}

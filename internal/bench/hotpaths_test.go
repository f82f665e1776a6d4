package bench_test

// Go benchmarks of the hot paths below and at the HTTP handler, without a network:
//
//	go test -run '^$' -bench . -benchmem ./internal/bench/
//
// Store benchmarks run on SQLite, and on PostgreSQL too when SPAREKEY_TEST_POSTGRES_URL is set
// (each in a schema of its own, dropped afterwards).

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sparekey/sparekey/internal/api"
	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/bench"
	"github.com/sparekey/sparekey/internal/secret"
	"github.com/sparekey/sparekey/internal/store/postgres"
	"github.com/sparekey/sparekey/internal/store/testdb"
)

func newKeyring(tb testing.TB) *secret.Keyring {
	tb.Helper()
	master := make([]byte, secret.MasterKeySize)
	rand.Read(master)
	keys, err := secret.NewKeyring(master)
	if err != nil {
		tb.Fatal(err)
	}
	return keys
}

// BenchmarkRecoveryCodeCheck is what recover does with the code before the database: normalise
// the typed code, judge its shape, HMAC it under the project's pepper.
func BenchmarkRecoveryCodeCheck(b *testing.B) {
	pepper := secret.NewPepper()
	b.ReportAllocs()
	for b.Loop() {
		n := secret.NormalizeRecoveryCode(" 7HQ2 k4mx-9TRB ")
		if secret.ClassifyRecoveryCode(n) != secret.CodeWellFormed {
			b.Fatal("not well formed")
		}
		secret.CodeMAC(pepper, n)
	}
}

// codeSetAD mirrors the associated data the domain binds a code set to (member and
// registration ids); its length, not its content, is what costs.
var codeSetAD = []byte("recovery-codes\x00member-test-" + uuid.NewString() + "\x00member-totp-test-" + uuid.NewString())

func codeSet(b *testing.B) []byte {
	codes, err := secret.NewRecoveryCodes(10, secret.CodeSymbols)
	if err != nil {
		b.Fatal(err)
	}
	return []byte(strings.Join(codes, "\n"))
}

// BenchmarkCodeSetSeal is rotate's and TOTP create's encryption of a set for GET.
func BenchmarkCodeSetSeal(b *testing.B) {
	keys, set := newKeyring(b), codeSet(b)
	b.ReportAllocs()
	for b.Loop() {
		keys.Seal(set, codeSetAD)
	}
}

// BenchmarkCodeSetOpen is GET's decryption of a set.
func BenchmarkCodeSetOpen(b *testing.B) {
	keys, set := newKeyring(b), codeSet(b)
	sealed := keys.Seal(set, codeSetAD)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := keys.Open(sealed, codeSetAD); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignJWT is the RS256 signature of a session JWT, the cost recover is judged against.
func BenchmarkSignJWT(b *testing.B) {
	key, err := secret.GenerateSigningKey("jwk-test-"+uuid.NewString(), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	claims := bench.SessionClaims(time.Now())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := secret.SignJWT(key, claims); err != nil {
			b.Fatal(err)
		}
	}
}

// ---- stores ----

// storeKind opens a fresh, migrated store.
type storeKind struct {
	name string
	open func(tb testing.TB) auth.Store
}

func storeKinds(tb testing.TB) []storeKind {
	kinds := []storeKind{{"sqlite", openSQLite}}
	if os.Getenv("SPAREKEY_TEST_POSTGRES_URL") != "" {
		kinds = append(kinds, storeKind{"postgres", openPostgres})
	}
	return kinds
}

func openSQLite(tb testing.TB) auth.Store { return testdb.SQLite(tb) }

// openPostgres makes a schema of its own in SPAREKEY_TEST_POSTGRES_URL's database and drops it
// afterwards.
func openPostgres(tb testing.TB) auth.Store {
	tb.Helper()
	schemaURL := testdb.PostgresSchema(tb, os.Getenv("SPAREKEY_TEST_POSTGRES_URL"), "skbench_")
	cfg, err := pgxpool.ParseConfig(schemaURL)
	if err != nil {
		tb.Fatal(err)
	}
	db, err := postgres.OpenConfig(context.Background(), cfg, postgres.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return db
}

// fixture is a service on a store with one project and one MFA organization.
type fixture struct {
	store  auth.Store
	svc    *auth.Service
	pid    string
	secret string
	org    string
	seq    int
}

func newFixture(tb testing.TB, store auth.Store, cfg auth.Config) *fixture {
	tb.Helper()
	ctx := context.Background()
	svc, err := auth.NewService(store, newKeyring(tb), cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	p, sec, err := svc.CreateProject(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	name, policy := "Bench", auth.MFAPolicyRequiredForAll
	o, err := svc.CreateOrganization(ctx, p.ID, auth.OrganizationInput{Name: &name, MFAPolicy: &policy})
	if err != nil {
		tb.Fatal(err)
	}
	return &fixture{store: store, svc: svc, pid: p.ID, secret: sec, org: o.ID}
}

// enroll adds n members with TOTP and ten codes: in bulk where the store can, else one by one
// through the API's own service calls (migrate, which renders no QR image).
func (f *fixture) enroll(tb testing.TB, n int) []auth.BulkEnrolled {
	tb.Helper()
	ctx := context.Background()
	var out []auth.BulkEnrolled
	if f.svc.CanBulkLoad() {
		first := f.seq
		f.seq += n
		err := f.svc.BulkEnroll(ctx, f.pid, func(yield func(auth.BulkMember) bool) {
			for i := first; i < first+n; i++ {
				if !yield(auth.BulkMember{OrganizationID: f.org, EmailAddress: fmt.Sprintf("m%d@example.com", i)}) {
					return
				}
			}
		}, func(e auth.BulkEnrolled) error { out = append(out, e); return nil })
		if err != nil {
			tb.Fatal(err)
		}
		return out
	}
	for range n {
		f.seq++
		email := fmt.Sprintf("m%d@example.com", f.seq)
		_, m, err := f.svc.CreateMember(ctx, f.pid, f.org, auth.MemberInput{EmailAddress: &email}, auth.Actor{})
		if err != nil {
			tb.Fatal(err)
		}
		enr, err := f.svc.MigrateTOTP(ctx, f.pid, auth.MigrateTOTPInput{
			MemberRef: auth.MemberRef{OrganizationID: f.org, MemberID: m.ID}, Secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"})
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, auth.BulkEnrolled{OrganizationID: f.org, MemberID: m.ID, RegistrationID: enr.RegistrationID, RecoveryCodes: enr.RecoveryCodes})
	}
	return out
}

// storedCodes returns every member's stored codes (ids and MACs), member by member.
func (f *fixture) storedCodes(tb testing.TB, members []auth.BulkEnrolled) [][]auth.RecoveryCode {
	tb.Helper()
	out := make([][]auth.RecoveryCode, len(members))
	for i, m := range members {
		_, codes, err := f.store.RecoveryCodes(context.Background(), f.pid, m.RegistrationID)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = codes
	}
	return out
}

// BenchmarkStoreComplete is the store's half of a successful recover: one transaction that
// spends the code, consumes the intermediate session, inserts the session and saves the member.
func BenchmarkStoreComplete(b *testing.B) {
	for _, kind := range storeKinds(b) {
		b.Run(kind.name, func(b *testing.B) {
			f := newFixture(b, kind.open(b), auth.DefaultConfig())
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Second)
			members := f.enroll(b, b.N/10+1)
			codes := f.storedCodes(b, members)
			completions := make([]auth.Completion, b.N)
			for i := range completions {
				m := members[i/10]
				token := secret.NewToken()
				ist := auth.IntermediateSession{
					TokenDigest: secret.Digest(secret.NewToken()), ProjectID: f.pid, OrganizationID: f.org, MemberID: m.MemberID,
					Factors:   []auth.Factor{{Type: auth.FactorPassword, DeliveryMethod: auth.DeliveryKnowledge, CreatedAt: now, UpdatedAt: now, LastAuthenticatedAt: now}},
					CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute),
				}
				if err := f.store.CreateIntermediateSession(ctx, ist); err != nil {
					b.Fatal(err)
				}
				factor := auth.Factor{Type: auth.FactorRecoveryCodes, DeliveryMethod: auth.DeliveryRecovery, CreatedAt: now, UpdatedAt: now, LastAuthenticatedAt: now,
					RecoveryCode: &auth.RecoveryCodeFactor{TOTPRecoveryCodeID: codes[i/10][i%10].ID}}
				completions[i] = auth.Completion{
					ProjectID: f.pid, MemberID: m.MemberID, Now: now, RefuseIfLocked: true,
					SpendRecoveryCode: codes[i/10][i%10].ID,
					ConsumeIST:        ist.TokenDigest,
					NewSession: auth.Session{
						ID: "member-session-test-" + uuid.NewString(), ProjectID: f.pid, OrganizationID: f.org, MemberID: m.MemberID,
						TokenDigest: secret.Digest(token), StartedAt: now, LastAccessedAt: now, ExpiresAt: now.Add(time.Hour), CustomClaims: map[string]any{},
					},
					ApplySession: func(s *auth.Session) error { s.Factors = append(s.Factors, factor); return nil },
					ApplyMember:  func(m *auth.Member) error { m.FailedAttempts = 0; return nil },
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			defer reportCPU(b)()
			for i := range b.N {
				if _, err := f.store.Complete(ctx, completions[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStoreFindRecoveryCode is recover's lookup of a code by MAC: a hit (an unused code)
// and a miss (a wrong code, the attacker's path).
func BenchmarkStoreFindRecoveryCode(b *testing.B) {
	for _, kind := range storeKinds(b) {
		b.Run(kind.name, func(b *testing.B) {
			f := newFixture(b, kind.open(b), auth.DefaultConfig())
			ctx := context.Background()
			members := f.enroll(b, 200)
			codes := f.storedCodes(b, members)
			for _, hit := range []bool{true, false} {
				name := map[bool]string{true: "hit", false: "miss"}[hit]
				b.Run(name, func(b *testing.B) {
					wrong := secret.CodeMAC(secret.NewPepper(), "zzzzzzzzzzzz")
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						m, mac := members[i%len(members)], codes[i%len(members)][i%10].MAC
						if !hit {
							mac = wrong
						}
						_, err := f.store.FindRecoveryCode(ctx, f.pid, m.RegistrationID, mac)
						if hit && err != nil || !hit && err == nil {
							b.Fatalf("FindRecoveryCode (hit %v): %v", hit, err)
						}
						i++
					}
				})
			}
		})
	}
}

// reportCPU adds the process's CPU time per operation to a benchmark's results, as cpu-ns/op:
// ns/op is wall time, which for a write includes waiting for the disk, and CPU is what
// DESIGN.md §5 budgets. It counts every goroutine of the process (the SQLite committer, the
// garbage collector), as the server's figure does. Call it right before the timed loop and call
// what it returns right after.
func reportCPU(b *testing.B) func() {
	start, err := bench.SelfCPU()
	if err != nil {
		return func() {}
	}
	return func() {
		end, err := bench.SelfCPU()
		if err == nil && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// ---- handlers ----

// handlerFixture is the real API handler over a temp SQLite file, called in-process.
type handlerFixture struct {
	*fixture
	h    http.Handler
	auth string
}

func newHandlerFixture(b *testing.B, cfg auth.Config) *handlerFixture {
	f := newFixture(b, openSQLite(b), cfg)
	// The server logs a line per request at info, as deployed; here it goes nowhere, after
	// being formatted.
	h := api.New(f.svc, slog.New(slog.NewTextHandler(io.Discard, nil)))
	req := httptest.NewRequest("GET", "/", nil)
	req.SetBasicAuth(f.pid, f.secret)
	return &handlerFixture{fixture: f, h: h, auth: req.Header.Get("Authorization")}
}

func (hf *handlerFixture) serve(b *testing.B, method, target string, body []byte, want int) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	req.Header.Set("Authorization", hf.auth)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	hf.h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s: %d %s", method, target, rec.Code, rec.Body)
	}
}

// BenchmarkHandlerGet is GET /v1/b2b/recovery_codes/{org}/{member} through the whole handler:
// routing, Basic auth, two member lookups, the code rows, decrypting the set, JSON.
func BenchmarkHandlerGet(b *testing.B) {
	hf := newHandlerFixture(b, auth.DefaultConfig())
	members := hf.enroll(b, 200)
	b.ReportAllocs()
	defer reportCPU(b)()
	i := 0
	for b.Loop() {
		m := members[i%len(members)]
		hf.serve(b, "GET", "/v1/b2b/recovery_codes/"+m.OrganizationID+"/"+m.MemberID, nil, http.StatusOK)
		i++
	}
}

// BenchmarkHandlerRecover is a successful recover through the whole handler, each with a
// fresh intermediate session and an unused code: decode, lookups, HMAC, the Complete
// transaction, the RS256 signature, JSON.
func BenchmarkHandlerRecover(b *testing.B) {
	hf := newHandlerFixture(b, auth.DefaultConfig())
	members := hf.enroll(b, b.N/10+1)
	refs := make([]auth.MemberRef, b.N)
	for i := range refs {
		refs[i] = auth.MemberRef{OrganizationID: members[i/10].OrganizationID, MemberID: members[i/10].MemberID}
	}
	ists, err := hf.svc.BulkIntermediateSessions(context.Background(), hf.pid, refs)
	if err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, b.N)
	for i := range bodies {
		m := members[i/10]
		bodies[i], _ = json.Marshal(map[string]string{"organization_id": m.OrganizationID, "member_id": m.MemberID,
			"recovery_code": m.RecoveryCodes[i%10], "intermediate_session_token": ists[i]})
	}
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for i := range b.N {
		hf.serve(b, "POST", "/v1/b2b/recovery_codes/recover", bodies[i], http.StatusOK)
	}
}

// BenchmarkHandlerWrongCode is a recover with a wrong code: everything up to the code lookup,
// then the failed-attempt write. No signature. The lock threshold is out of reach, as in
// sparekey bench: a locked member would answer 429 without looking at the code.
func BenchmarkHandlerWrongCode(b *testing.B) {
	cfg := auth.DefaultConfig()
	cfg.Lock.Threshold = 1_000_000_000
	hf := newHandlerFixture(b, cfg)
	members := hf.enroll(b, 100)
	refs := make([]auth.MemberRef, len(members))
	for i, m := range members {
		refs[i] = auth.MemberRef{OrganizationID: m.OrganizationID, MemberID: m.MemberID}
	}
	ists, err := hf.svc.BulkIntermediateSessions(context.Background(), hf.pid, refs)
	if err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, len(members))
	for i, m := range members {
		bodies[i], _ = json.Marshal(map[string]string{"organization_id": m.OrganizationID, "member_id": m.MemberID,
			"recovery_code": "zzzz-zzzz-zzzz", "intermediate_session_token": ists[i]})
	}
	b.ReportAllocs()
	defer reportCPU(b)()
	i := 0
	for b.Loop() {
		hf.serve(b, "POST", "/v1/b2b/recovery_codes/recover", bodies[i%len(bodies)], http.StatusUnauthorized)
		i++
	}
}

// BenchmarkBulkEnroll is the bulk seeding path per member: building (TOTP secret, ten codes,
// their MACs, two seals) and the SQLite inserts.
func BenchmarkBulkEnroll(b *testing.B) {
	f := newFixture(b, openSQLite(b), auth.DefaultConfig())
	b.ReportAllocs()
	b.ResetTimer()
	f.enroll(b, b.N)
}

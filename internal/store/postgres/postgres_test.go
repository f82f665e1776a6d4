package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/store/storetest"
)

// testURL is the database the tests create their schemas in. CI always sets it; elsewhere the
// tests skip without it.
func testURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("SPAREKEY_TEST_POSTGRES_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SPAREKEY_TEST_POSTGRES_URL is not set; CI must test the PostgreSQL store")
		}
		t.Skip("SPAREKEY_TEST_POSTGRES_URL is not set")
	}
	return u
}

// newSchema creates an empty schema sk_<random> that is dropped when the test ends, and returns
// a pool configuration whose connections use it.
func newSchema(t *testing.T) *pgxpool.Config {
	t.Helper()
	url := testURL(t)
	schemaURL, drop, err := NewSchema(context.Background(), url, "sk_")
	if err != nil {
		t.Fatalf("a schema of its own in SPAREKEY_TEST_POSTGRES_URL's database: %v", err)
	}
	t.Cleanup(func() {
		if err := drop(context.Background()); err != nil {
			t.Errorf("drop the test's schema: %v", err)
		}
	})
	cfg, err := pgxpool.ParseConfig(schemaURL)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// connect opens a store on the schema, as one replica would, closing it when the test ends.
func connect(t *testing.T, cfg *pgxpool.Config) *DB {
	t.Helper()
	// The conformance suite runs as many tests at once as -parallel allows, some tests open two
	// pools, and each pool fills up under the suite's concurrency checks: a small pool keeps the
	// total under the server's connection limit (100 by default) on large CI machines too.
	db, err := OpenConfig(context.Background(), cfg.Copy(), Options{MaxConns: 4, StatementTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openFresh returns a migrated, empty store in a schema of its own.
func openFresh(t *testing.T) *DB {
	t.Helper()
	db := connect(t, newSchema(t))
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestConformance(t *testing.T) {
	testURL(t)
	storetest.Run(t, func(t *testing.T) auth.Store { return openFresh(t) })
}

func TestMigrateIsIdempotent(t *testing.T) {
	ctx := context.Background()
	db := connect(t, newSchema(t))
	for i := 0; i < 3; i++ {
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("Migrate #%d: %v", i+1, err)
		}
	}
	current, expected, err := db.SchemaVersion(ctx)
	if err != nil || current != expected || expected < 1 {
		t.Fatalf("SchemaVersion = %d, %d, %v; want the binary's version twice", current, expected, err)
	}
	if err := db.CheckSchema(ctx); err != nil {
		t.Fatalf("CheckSchema after Migrate: %v", err)
	}
	if err := db.IntegrityCheck(ctx); err != nil {
		t.Fatalf("IntegrityCheck: %v", err)
	}
	assertMigrationRows(t, db, expected)
}

// assertMigrationRows checks that schema_migrations records each version exactly once.
func assertMigrationRows(t *testing.T, db *DB, expected int) {
	t.Helper()
	var rows, distinct, top int
	if err := db.pool.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT version), max(version) FROM schema_migrations`).Scan(&rows, &distinct, &top); err != nil {
		t.Fatal(err)
	}
	if rows != expected || distinct != expected || top != expected {
		t.Fatalf("schema_migrations holds %d rows, %d versions, newest %d; want %d, %d, %d", rows, distinct, top, expected, expected, expected)
	}
}

// Replicas starting together all migrate: the advisory lock makes one apply each migration and
// the others find it applied.
func TestConcurrentMigrateIsSafe(t *testing.T) {
	cfg := newSchema(t)
	replicas := []*DB{connect(t, cfg), connect(t, cfg), connect(t, cfg)}
	for _, db := range replicas {
		if err := db.Ping(context.Background()); err != nil { // connected before the start
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(replicas))
	start := make(chan struct{})
	for i, db := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = db.Migrate(context.Background())
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Migrate: %v", i, err)
		}
	}
	_, expected, _ := replicas[0].SchemaVersion(context.Background())
	assertMigrationRows(t, replicas[0], expected)
	for i, db := range replicas {
		if err := db.CheckSchema(context.Background()); err != nil {
			t.Errorf("replica %d: CheckSchema: %v", i, err)
		}
	}
}

func TestCheckSchemaRefusesOtherVersions(t *testing.T) {
	ctx := context.Background()
	db := connect(t, newSchema(t))
	if err := db.CheckSchema(ctx); !errors.Is(err, ErrSchemaOutdated) {
		t.Fatalf("CheckSchema on an empty schema = %v, want ErrSchemaOutdated", err)
	}
	if v, _, err := db.SchemaVersion(ctx); v != 0 || err != nil {
		t.Fatalf("SchemaVersion on an empty schema = %d, %v; want 0", v, err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	_, expected, _ := db.SchemaVersion(ctx)
	if _, err := db.pool.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, expected+1); err != nil {
		t.Fatal(err)
	}
	if err := db.CheckSchema(ctx); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("CheckSchema on a newer schema = %v, want ErrSchemaTooNew", err)
	}
	if err := db.Migrate(ctx); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Migrate on a newer schema = %v, want ErrSchemaTooNew", err)
	}
}

// A schema_migrations table of another tool (golang-migrate's shape) is refused, not used.
func TestForeignSchemaMigrationsTableIsRefused(t *testing.T) {
	ctx := context.Background()
	db := connect(t, newSchema(t))
	if _, err := db.pool.Exec(ctx, `CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "another tool") {
		t.Fatalf("Migrate over a foreign schema_migrations = %v, want a refusal", err)
	}
	if _, _, err := db.SchemaVersion(ctx); err == nil {
		t.Fatal("SchemaVersion read a foreign schema_migrations")
	}
}

// IntegrityCheck finds rows whose denormalised project or organization disagrees with their
// member's, which no foreign key covers.
func TestIntegrityCheckFindsMismatchedRows(t *testing.T) {
	ctx := context.Background()
	db := openFresh(t)
	s := newSeed(t, db)
	m := s.member(t, db, "ann@acme.test", "")
	if err := db.IntegrityCheck(ctx); err != nil {
		t.Fatalf("IntegrityCheck on sound data: %v", err)
	}
	ist := auth.IntermediateSession{TokenDigest: []byte("digest"), ProjectID: s.project.ID, OrganizationID: "organization-test-elsewhere", MemberID: m.ID, CreatedAt: s.now, ExpiresAt: s.now.Add(time.Minute)}
	if err := db.CreateIntermediateSession(ctx, ist); err != nil {
		t.Fatal(err)
	}
	if err := db.IntegrityCheck(ctx); err == nil {
		t.Fatal("IntegrityCheck missed an intermediate session of another organization")
	}
}

func TestOpenSetsPoolAndStatementTimeout(t *testing.T) {
	cfg := newSchema(t)
	db, err := OpenConfig(context.Background(), cfg, Options{MaxConns: 3, StatementTimeout: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.pool.Config().MaxConns; got != 3 {
		t.Errorf("MaxConns = %d, want 3", got)
	}
	var timeout string
	if err := db.pool.QueryRow(context.Background(), `SHOW statement_timeout`).Scan(&timeout); err != nil {
		t.Fatal(err)
	}
	if timeout != "1500ms" {
		t.Errorf("statement_timeout = %q, want 1500ms", timeout)
	}
}

func TestOpenDoesNotLeakThePassword(t *testing.T) {
	const password = "hunter2-not-a-real-password"
	for _, conn := range []string{
		"postgres://sparekey:" + password + "@127.0.0.1:1/sparekey?sslmode=disable&connect_timeout=1",
		"postgres://sparekey:" + password + "@[::1:bad/sparekey",
	} {
		_, err := Open(context.Background(), conn, Options{})
		if err == nil {
			t.Fatalf("Open(%q) succeeded", conn)
		}
		if msg := err.Error(); strings.Contains(msg, password) {
			t.Errorf("Open error shows the password: %s", msg)
		}
	}
}

// seed is a project with one organization.
type seed struct {
	project auth.Project
	org     auth.Organization
	now     time.Time
}

func newSeed(t *testing.T, db *DB) seed {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	p := auth.Project{ID: "project-test-" + uuid.NewString(), SecretDigest: make([]byte, 32), SealedPepper: make([]byte, 60), CreatedAt: now}
	key := auth.SigningKey{KID: "jwk-test-" + uuid.NewString(), ProjectID: p.ID, SealedPrivateKey: []byte{1}, CreatedAt: now}
	if err := db.CreateProject(ctx, p, key); err != nil {
		t.Fatal(err)
	}
	s := seed{project: p, now: now}
	s.org = s.organization(t, db, "acme", "")
	return s
}

func (s seed) organization(t *testing.T, db *DB, slug, extID string) auth.Organization {
	t.Helper()
	o := auth.Organization{ID: "organization-test-" + uuid.NewString(), ProjectID: s.project.ID, Name: slug, Slug: slug, ExternalID: extID, CreatedAt: s.now, UpdatedAt: s.now}
	if err := db.CreateOrganization(context.Background(), o); err != nil {
		t.Fatalf("CreateOrganization %s: %v", slug, err)
	}
	return o
}

func (s seed) newMember(email, extID string) auth.Member {
	return auth.Member{ID: "member-test-" + uuid.NewString(), OrganizationID: s.org.ID, ProjectID: s.project.ID,
		EmailAddress: email, ExternalID: extID, Status: auth.StatusActive, CreatedAt: s.now, UpdatedAt: s.now}
}

func (s seed) member(t *testing.T, db *DB, email, extID string) auth.Member {
	t.Helper()
	m := s.newMember(email, extID)
	if err := db.CreateMember(context.Background(), m, nil); err != nil {
		t.Fatalf("CreateMember %s: %v", email, err)
	}
	return m
}

// Each unique constraint becomes its domain error, by constraint name; a row that breaks two
// reports the one SQLite's store checks first.
func TestUniqueViolationsAreDomainErrors(t *testing.T) {
	ctx := context.Background()
	db := openFresh(t)
	s := newSeed(t, db)
	other := s.organization(t, db, "globex", "globex-ext")
	m := s.member(t, db, "ann@acme.test", "ann-ext")
	s.member(t, db, "bob@acme.test", "bob-ext")

	orgWith := func(slug, extID string) auth.Organization {
		return auth.Organization{ID: "organization-test-" + uuid.NewString(), ProjectID: s.project.ID, Name: "x", Slug: slug, ExternalID: extID, CreatedAt: s.now, UpdatedAt: s.now}
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"create org, slug taken", db.CreateOrganization(ctx, orgWith("globex", "")), auth.ErrOrganizationSlugUsed},
		{"create org, external id taken", db.CreateOrganization(ctx, orgWith("initech", "globex-ext")), auth.ErrOrganizationExtIDUsed},
		{"create org, both taken", db.CreateOrganization(ctx, orgWith("globex", "globex-ext")), auth.ErrOrganizationSlugUsed},
		{"update org to a taken slug", errOf(db.UpdateOrganization(ctx, s.project.ID, s.org.ID, func(o *auth.Organization) error { o.Slug = "globex"; return nil })), auth.ErrOrganizationSlugUsed},
		{"update org to a taken external id", errOf(db.UpdateOrganization(ctx, s.project.ID, s.org.ID, func(o *auth.Organization) error { o.ExternalID = "globex-ext"; return nil })), auth.ErrOrganizationExtIDUsed},
		{"create member, email taken", db.CreateMember(ctx, s.newMember("ann@acme.test", ""), nil), auth.ErrDuplicateMemberEmail},
		{"create member, external id taken", db.CreateMember(ctx, s.newMember("cat@acme.test", "ann-ext"), nil), auth.ErrDuplicateMemberExtID},
		{"create member, both taken", db.CreateMember(ctx, s.newMember("ann@acme.test", "ann-ext"), nil), auth.ErrDuplicateMemberEmail},
		{"update member to a taken email", errOf(db.UpdateMember(ctx, s.project.ID, m.ID, func(x *auth.Member) ([]auth.Event, error) { x.EmailAddress = "bob@acme.test"; return nil, nil })), auth.ErrDuplicateMemberEmail},
		{"update member to a taken external id", errOf(db.UpdateMember(ctx, s.project.ID, m.ID, func(x *auth.Member) ([]auth.Event, error) { x.ExternalID = "bob-ext"; return nil, nil })), auth.ErrDuplicateMemberExtID},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	if got, err := db.Organization(ctx, s.project.ID, other.ID); err != nil || got.Slug != "globex" {
		t.Errorf("the other organization changed: %+v, %v", got, err)
	}

	reg := auth.TOTPRegistration{ID: "member-totp-test-" + uuid.NewString(), MemberID: m.ID, SealedSecret: []byte{1}, CreatedAt: s.now}
	if err := db.CreateTOTP(ctx, s.project.ID, reg, nil); err != nil {
		t.Fatal(err)
	}
	reg.ID = "member-totp-test-" + uuid.NewString()
	if err := db.CreateTOTP(ctx, s.project.ID, reg, nil); !errors.Is(err, auth.ErrActiveTOTPExists) {
		t.Errorf("second CreateTOTP = %v, want ErrActiveTOTPExists", err)
	}
}

func errOf[T any](_ T, err error) error { return err }

// Racing creations of one slug from separate replicas: one wins, every other gets the domain
// error, never a driver error.
func TestRacingSlugsAcrossReplicas(t *testing.T) {
	cfg := newSchema(t)
	a := connect(t, cfg)
	if err := a.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := connect(t, cfg)
	s := newSeed(t, a)
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := []*DB{a, b}[i%2]
			o := auth.Organization{ID: "organization-test-" + uuid.NewString(), ProjectID: s.project.ID, Name: "x", Slug: "contested", CreatedAt: s.now, UpdatedAt: s.now}
			errs[i] = db.CreateOrganization(context.Background(), o)
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, auth.ErrOrganizationSlugUsed):
			t.Errorf("CreateOrganization = %v, want nil or ErrOrganizationSlugUsed", err)
		}
	}
	if won != 1 {
		t.Errorf("%d creations of one slug succeeded, want 1", won)
	}
}

// Failed attempts counted at once through two replicas add up exactly, and the lock lands on the
// threshold.
func TestFailedAttemptsAddUpAcrossReplicas(t *testing.T) {
	cfg := newSchema(t)
	a := connect(t, cfg)
	if err := a.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := connect(t, cfg)
	s := newSeed(t, a)
	m := s.member(t, a, "ann@acme.test", "")
	const n = 24
	policy := auth.LockPolicy{Threshold: 20, Duration: time.Hour}
	var wg sync.WaitGroup
	lockedNow := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := []*DB{a, b}[i%2]
			after, err := db.UpdateMember(context.Background(), s.project.ID, m.ID, func(x *auth.Member) ([]auth.Event, error) {
				x.RecordFailure(s.now, policy)
				return nil, nil
			})
			errs[i], lockedNow[i] = err, after.Locked(s.now)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := a.Member(context.Background(), s.project.ID, "", m.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Attempts after the lock are not counted (Member.RecordFailure), so the counter stops at 20.
	if got.FailedAttempts != 20 || !got.Locked(s.now) {
		t.Errorf("after %d concurrent failures: failed_attempts %d, locked %v; want 20, true", n, got.FailedAttempts, got.Locked(s.now))
	}
	if want := s.now.Add(time.Hour); !got.LockExpiresAt.Equal(want) {
		t.Errorf("lock_expires_at = %v, want %v", got.LockExpiresAt, want)
	}
}

// One recovery code spent by 64 concurrent Completes through two replicas: exactly one wins,
// and every loser gets ErrRecoveryCodeRejected with its intermediate session left unspent.
func TestDoubleSpendAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	cfg := newSchema(t)
	a := connect(t, cfg)
	if err := a.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	b := connect(t, cfg)
	s := newSeed(t, a)
	m := s.member(t, a, "ann@acme.test", "")
	reg := auth.TOTPRegistration{ID: "member-totp-test-" + uuid.NewString(), MemberID: m.ID, SealedSecret: []byte{1}, CreatedAt: s.now}
	var codes []auth.RecoveryCode
	for i := range 10 {
		mac := make([]byte, 32)
		rand.Read(mac)
		codes = append(codes, auth.RecoveryCode{ID: codeIDPrefix + uuid.NewString(), Position: i, MAC: mac})
	}
	if err := a.CreateTOTP(ctx, s.project.ID, reg, codes); err != nil {
		t.Fatal(err)
	}
	const n = 64
	ists := make([][]byte, n)
	for i := range ists {
		ists[i] = make([]byte, 32)
		rand.Read(ists[i])
		ist := auth.IntermediateSession{TokenDigest: ists[i], ProjectID: s.project.ID, OrganizationID: s.org.ID, MemberID: m.ID, CreatedAt: s.now, ExpiresAt: s.now.Add(10 * time.Minute)}
		if err := a.CreateIntermediateSession(ctx, ist); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	remaining := make([]int, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			digest := make([]byte, 32)
			rand.Read(digest)
			done, err := []*DB{a, b}[i%2].Complete(ctx, auth.Completion{
				ProjectID: s.project.ID, MemberID: m.ID, Now: s.now, RefuseIfLocked: true,
				SpendRecoveryCode: codes[3].ID,
				ConsumeIST:        ists[i],
				NewSession: auth.Session{ID: "member-session-test-" + uuid.NewString(), ProjectID: s.project.ID, OrganizationID: s.org.ID, MemberID: m.ID,
					TokenDigest: digest, StartedAt: s.now, LastAccessedAt: s.now, ExpiresAt: s.now.Add(time.Hour)},
			})
			errs[i], remaining[i] = err, done.RemainingCodes
		}()
	}
	close(start)
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
			if remaining[i] != 9 {
				t.Errorf("winner saw %d remaining codes, want 9", remaining[i])
			}
		case !errors.Is(err, auth.ErrRecoveryCodeRejected):
			t.Errorf("Complete = %v, want nil or ErrRecoveryCodeRejected", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent spends of one code succeeded, want exactly 1", won, n)
	}
	left := 0
	for _, d := range ists {
		if _, err := a.IntermediateSession(ctx, s.project.ID, d, s.now); err == nil {
			left++
		}
	}
	if left != n-1 {
		t.Errorf("%d intermediate sessions left, want %d: a lost race must not consume one", left, n-1)
	}
	sessions, err := a.Sessions(ctx, s.project.ID, m.ID, s.now)
	if err != nil || len(sessions) != 1 {
		t.Errorf("Sessions = %d, %v; want exactly 1", len(sessions), err)
	}
}

// PostgreSQL stores no NUL character. Lookups with one find nothing, as they would in SQLite;
// writes with one are refused as invalid input rather than failing as a fault.
func TestNULCharacters(t *testing.T) {
	ctx := context.Background()
	db := openFresh(t)
	s := newSeed(t, db)
	m := s.member(t, db, "ann@acme.test", "")
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"organization by ref", errOf(db.Organization(ctx, s.project.ID, "acme\x00")), auth.ErrOrganizationNotFound},
		{"member by ref", errOf(db.Member(ctx, s.project.ID, s.org.ID, m.ID+"\x00")), auth.ErrMemberNotFound},
		{"member by invalid UTF-8", errOf(db.Member(ctx, s.project.ID, "", "\xff")), auth.ErrMemberNotFound},
		{"member by email", errOf(db.MemberByEmail(ctx, s.project.ID, s.org.ID, "ann\x00@acme.test")), auth.ErrMemberNotFound},
		{"session by id", errOf(db.Session(ctx, s.project.ID, "member-session-\x00", s.now)), auth.ErrSessionNotFound},
		{"project", errOf(db.Project(ctx, "project-\x00")), auth.ErrProjectNotFound},
		{"name with NUL", db.CreateOrganization(ctx, auth.Organization{ID: "organization-test-" + uuid.NewString(), ProjectID: s.project.ID, Name: "a\x00b", Slug: "ab", CreatedAt: s.now, UpdatedAt: s.now}), auth.ErrInvalidRequestValue},
		{"metadata with NUL", errOf(db.UpdateMember(ctx, s.project.ID, m.ID, func(x *auth.Member) ([]auth.Event, error) {
			x.TrustedMetadata = map[string]any{"k": "a\x00b"}
			return nil, nil
		})), auth.ErrInvalidRequestValue},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	page, err := db.SearchOrganizations(ctx, s.project.ID, auth.OrganizationQuery{Operator: "OR", Limit: 10, Filters: []auth.OrganizationFilter{
		{Name: auth.FilterOrganizationSlugs, Values: []string{"acme\x00", "acme"}},
		{Name: auth.FilterNameFuzzy, Value: "\x00"},
	}})
	if err != nil || page.Total != 1 || len(page.Organizations) != 1 {
		t.Errorf("search with NUL values = %+v, %v; want acme alone", page, err)
	}
}

// The retry policy: serialization failures and deadlocks run the operation again, a bounded
// number of times; anything else is returned at once.
func TestRetry(t *testing.T) {
	db := &DB{}
	for _, tc := range []struct {
		name      string
		failures  int
		code      string
		wantCalls int
		wantErr   bool
	}{
		{"deadlock, then success", 2, codeDeadlockDetected, 3, false},
		{"serialization failure, then success", 1, codeSerializationFailure, 2, false},
		{"deadlock every time", 100, codeDeadlockDetected, maxAttempts, true},
		{"unique violation is not retried", 100, codeUniqueViolation, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := db.retry(context.Background(), func() error {
				calls++
				if calls <= tc.failures {
					return &pgconn.PgError{Code: tc.code}
				}
				return nil
			})
			if calls != tc.wantCalls || (err != nil) != tc.wantErr {
				t.Errorf("calls %d, err %v; want %d calls, error %v", calls, err, tc.wantCalls, tc.wantErr)
			}
		})
	}
}

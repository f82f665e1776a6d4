package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/secret"
	"github.com/sparekey/sparekey/internal/store/sqlite"
	"github.com/sparekey/sparekey/internal/store/storetest"
)

// openMigrated opens and migrates a database at path; the test closes it.
func openMigrated(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

// TestConformance runs the store suite on a fresh database file per test. Before closing each
// one it runs SQLite's integrity and foreign-key checks over what the test left behind.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) auth.Store {
		db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sparekey.db"))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() {
			// t.Context() is already cancelled when cleanups run.
			if err := db.IntegrityCheck(context.Background()); err != nil {
				t.Errorf("IntegrityCheck after the test: %v", err)
			}
			if err := db.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		return db
	})
}

func TestReopenedDatabaseKeepsItsData(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sparekey.db")
	now := time.Date(2026, time.March, 1, 9, 30, 0, 0, time.UTC)
	id := func(kind string) string { return kind + "-test-" + uuid.NewString() }

	p := auth.Project{ID: id("project"), SecretDigest: []byte("digest"), SealedPepper: []byte("pepper"), CreatedAt: now}
	key := auth.SigningKey{KID: id("jwk"), ProjectID: p.ID, SealedPrivateKey: []byte("private"), CreatedAt: now,
		JWK: secret.JWK{Alg: "RS256", E: "AQAB", KeyOps: []string{"verify"}, Kty: "RSA", N: "n", Use: "sig", X5C: []string{"c"}, X5TS256: "t"}}
	key.JWK.KID = key.KID
	o := auth.Organization{ID: id("organization"), ProjectID: p.ID, Name: "Acme", Slug: "acme", ExternalID: "acme-ext",
		OrganizationSettings: auth.OrganizationSettings{MFAPolicy: auth.MFAPolicyRequiredForAll, EmailAllowedDomains: []string{"acme.com"}},
		CreatedAt:            now, UpdatedAt: now}
	m := auth.Member{ID: id("member"), OrganizationID: o.ID, ProjectID: p.ID, EmailAddress: "a@acme.com", Status: auth.StatusActive,
		MemberProfile: auth.MemberProfile{Name: "A", Roles: []string{auth.RoleAdmin}}, CreatedAt: now, UpdatedAt: now}
	pw := auth.Password{ID: id("member-password"), MemberID: m.ID, Sealed: []byte("hash"), CreatedAt: now}
	reg := auth.TOTPRegistration{ID: id("member-totp"), MemberID: m.ID, SealedSecret: []byte("secret"), SealedCodes: []byte("codes"), LastStep: 5, CreatedAt: now}
	codes := []auth.RecoveryCode{
		{ID: id("member-totp-recovery-code"), Position: 0, MAC: []byte("mac-0")},
		{ID: id("member-totp-recovery-code"), Position: 1, MAC: []byte("mac-1")},
	}
	s := auth.Session{ID: id("member-session"), ProjectID: p.ID, OrganizationID: o.ID, MemberID: m.ID, TokenDigest: []byte("token"),
		StartedAt: now, LastAccessedAt: now, ExpiresAt: now.Add(time.Hour), Factors: []auth.Factor{}, CustomClaims: map[string]any{"k": "v"}}
	ist := auth.IntermediateSession{TokenDigest: []byte("ist"), ProjectID: p.ID, OrganizationID: o.ID, MemberID: m.ID,
		Factors:   []auth.Factor{{Type: auth.FactorPassword, DeliveryMethod: auth.DeliveryKnowledge, CreatedAt: now, UpdatedAt: now, LastAuthenticatedAt: now}},
		CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}

	func() {
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer db.Close()
		must(t, db.Migrate(ctx), "Migrate")
		must(t, db.CreateProject(ctx, p, key), "CreateProject")
		must(t, db.CreateOrganization(ctx, o), "CreateOrganization")
		must(t, db.CreateMember(ctx, m, &pw), "CreateMember")
		must(t, db.CreateTOTP(ctx, p.ID, reg, codes), "CreateTOTP")
		_, err = db.Complete(ctx, auth.Completion{ProjectID: p.ID, MemberID: m.ID, Now: now, SpendRecoveryCode: codes[1].ID, NewSession: s})
		must(t, err, "Complete")
		must(t, db.CreateIntermediateSession(ctx, ist), "CreateIntermediateSession")
		must(t, db.Close(), "Close")
	}()

	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	must(t, db.CheckSchema(ctx), "CheckSchema after reopening")

	gotP, err := db.Project(ctx, p.ID)
	must(t, err, "Project")
	same(t, gotP, p, "project")
	keys, err := db.SigningKeys(ctx, p.ID)
	must(t, err, "SigningKeys")
	same(t, keys, []auth.SigningKey{key}, "signing keys")
	gotO, err := db.Organization(ctx, p.ID, "acme-ext")
	must(t, err, "Organization")
	same(t, gotO, o, "organization")
	gotM, err := db.Member(ctx, p.ID, o.ID, m.ID)
	must(t, err, "Member")
	m.TOTPRegistrationID, m.PasswordID = reg.ID, pw.ID
	same(t, gotM, m, "member")
	gotPW, err := db.Password(ctx, p.ID, m.ID)
	must(t, err, "Password")
	same(t, gotPW, pw, "password")
	gotReg, err := db.TOTP(ctx, p.ID, m.ID)
	must(t, err, "TOTP")
	same(t, gotReg, reg, "registration")
	_, gotCodes, err := db.RecoveryCodes(ctx, p.ID, reg.ID)
	must(t, err, "RecoveryCodes")
	codes[1].UsedAt = now
	same(t, gotCodes, codes, "recovery codes (one spent before closing)")
	gotS, err := db.SessionByToken(ctx, p.ID, s.TokenDigest, now)
	must(t, err, "SessionByToken")
	same(t, gotS, s, "session")
	gotIST, err := db.IntermediateSession(ctx, p.ID, ist.TokenDigest, now)
	must(t, err, "IntermediateSession")
	same(t, gotIST, ist, "intermediate session")
	must(t, db.IntegrityCheck(ctx), "IntegrityCheck")
}

func TestMigrateIsIdempotent(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sparekey.db")
	db := openMigrated(t, path)
	p := auth.Project{ID: "project-test-" + uuid.NewString(), SecretDigest: []byte("d"), SealedPepper: []byte("p"), CreatedAt: time.Unix(1_770_000_000, 0).UTC()}
	must(t, db.CreateProject(ctx, p, auth.SigningKey{KID: "jwk-test-" + uuid.NewString(), ProjectID: p.ID, SealedPrivateKey: []byte("k"), CreatedAt: p.CreatedAt}), "CreateProject")

	for i := range 3 {
		must(t, db.Migrate(ctx), fmt.Sprintf("Migrate again (%d)", i+1))
	}
	current, expected, err := db.SchemaVersion(ctx)
	must(t, err, "SchemaVersion")
	if current != expected || expected < 1 {
		t.Errorf("SchemaVersion = %d, expected %d; want equal and at least 1", current, expected)
	}
	must(t, db.CheckSchema(ctx), "CheckSchema")
	projects, err := db.Projects(ctx)
	must(t, err, "Projects")
	same(t, projects, []auth.Project{p}, "projects after repeated migrations")

	// And in a second process's view: open the same file again and migrate.
	again := openMigrated(t, path)
	must(t, again.CheckSchema(ctx), "CheckSchema from a second handle")
	must(t, again.IntegrityCheck(ctx), "IntegrityCheck")
}

func TestCheckSchemaRefusesAnotherVersion(t *testing.T) {
	ctx := t.Context()

	t.Run("an unmigrated database is outdated", func(t *testing.T) {
		db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "sparekey.db"))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.CheckSchema(ctx); !errors.Is(err, sqlite.ErrSchemaOutdated) {
			t.Errorf("CheckSchema = %v, want ErrSchemaOutdated", err)
		}
		must(t, db.Migrate(ctx), "Migrate")
		must(t, db.CheckSchema(ctx), "CheckSchema after Migrate")
	})

	t.Run("a database migrated by a newer binary is too new", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sparekey.db")
		db := openMigrated(t, path)
		_, expected, err := db.SchemaVersion(ctx)
		must(t, err, "SchemaVersion")
		must(t, db.Close(), "Close")
		setUserVersion(t, path, expected+1)

		newer, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { newer.Close() })
		if err := newer.CheckSchema(ctx); !errors.Is(err, sqlite.ErrSchemaTooNew) {
			t.Errorf("CheckSchema = %v, want ErrSchemaTooNew", err)
		}
		if err := newer.Migrate(ctx); !errors.Is(err, sqlite.ErrSchemaTooNew) {
			t.Errorf("Migrate = %v, want ErrSchemaTooNew", err)
		}
		current, _, err := newer.SchemaVersion(ctx)
		must(t, err, "SchemaVersion")
		if current != expected+1 {
			t.Errorf("user_version after the refused Migrate = %d, want %d (untouched)", current, expected+1)
		}
	})

	t.Run("a database behind this binary is outdated", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sparekey.db")
		db := openMigrated(t, path)
		_, expected, err := db.SchemaVersion(ctx)
		must(t, err, "SchemaVersion")
		must(t, db.Close(), "Close")
		setUserVersion(t, path, expected-1)

		older, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { older.Close() })
		if err := older.CheckSchema(ctx); !errors.Is(err, sqlite.ErrSchemaOutdated) {
			t.Errorf("CheckSchema = %v, want ErrSchemaOutdated", err)
		}
	})
}

// setUserVersion rewrites the schema version behind the store's back, as another binary would.
func setUserVersion(t *testing.T, path string, v int) {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatalf("open raw: %v", err)
	}
	defer raw.Close()
	if _, err := raw.Exec(fmt.Sprintf("PRAGMA user_version = %d", v)); err != nil {
		t.Fatalf("set user_version: %v", err)
	}
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// same compares exactly: these values were built with the types the store decodes into.
func same(t *testing.T, got, want any, what string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

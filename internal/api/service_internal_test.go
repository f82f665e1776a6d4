package api

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/secret"
	"github.com/sparekey/sparekey/internal/store/postgres"
	"github.com/sparekey/sparekey/internal/store/sqlite"
	"github.com/sparekey/sparekey/internal/store/testdb"
)

// The store under the HTTP tests. It lives in package api's test files, exported, so that one
// switch serves both the internal tests here and the scenario suite of package api_test (which
// sees the exported names of these files, the export_test.go idiom).

// TestStore is a store as serve holds one: the domain's store, the readiness checks and the pool
// report.
type TestStore interface {
	auth.Store
	Database
	PoolReporter
}

// StoreOwner is what opening a store needs of its owner: a test, or a suite-wide owner whose
// cleanups run after every test.
type StoreOwner interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
	TempDir() string
}

// Store backends of the HTTP tests.
const (
	BackendSQLite   = "sqlite"
	BackendPostgres = "postgres"
)

// StoreBackend is the store the HTTP tests run on: SQLite unless SPAREKEY_TEST_API_BACKEND says
// postgres (CI runs the suite once with each).
func StoreBackend(t StoreOwner) string {
	t.Helper()
	b, err := StoreBackendOfEnv()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// StoreBackendOfEnv reads the backend from the environment. Anything but sqlite or postgres is
// a mistake, not a fallback; and the PostgreSQL run was asked for explicitly, so without a
// database to make its schemas in it is an error, never a skip.
func StoreBackendOfEnv() (string, error) {
	switch b := os.Getenv("SPAREKEY_TEST_API_BACKEND"); b {
	case "", BackendSQLite:
		return BackendSQLite, nil
	case BackendPostgres:
		if os.Getenv("SPAREKEY_TEST_POSTGRES_URL") == "" {
			return "", errors.New("SPAREKEY_TEST_API_BACKEND=postgres but SPAREKEY_TEST_POSTGRES_URL is not set: the PostgreSQL run needs a database to make its schemas in")
		}
		return BackendPostgres, nil
	default:
		return "", fmt.Errorf("SPAREKEY_TEST_API_BACKEND=%s: want sqlite (the default) or postgres", b)
	}
}

// OpenTestStore opens a migrated, empty store on the backend StoreBackend names, closed (and on
// PostgreSQL dropped) when t ends.
func OpenTestStore(t StoreOwner) TestStore {
	t.Helper()
	if StoreBackend(t) == BackendPostgres {
		return openTestPostgres(t)
	}
	return OpenTestSQLite(t)
}

// OpenTestSQLite opens a migrated store on a temp SQLite file, whatever the backend: for the
// tests that are about the file itself.
func OpenTestSQLite(t StoreOwner) *sqlite.DB {
	t.Helper()
	return testdb.SQLite(t)
}

// openTestPostgres makes a schema sk_api_<random> in the database of SPAREKEY_TEST_POSTGRES_URL
// and opens a migrated store on it through search_path in the URL, as an operator's --db does.
func openTestPostgres(t StoreOwner) *postgres.DB {
	t.Helper()
	// Before the store opens, so the schema is dropped after the store's Close.
	schemaURL := testdb.PostgresSchema(t, os.Getenv("SPAREKEY_TEST_POSTGRES_URL"), "sk_api_")

	ctx := context.Background()
	// A pool of serve's default size on a small machine; the statement timeout keeps a stuck
	// query from hanging the suite until go test's own timeout.
	db, err := postgres.Open(ctx, schemaURL, postgres.Options{MaxConns: 8, StatementTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

// newInternalService is a real service over the test backend's store with one project, for the
// package's internal tests (the scenario tests in package api_test have their own harness).
func newInternalService(t StoreOwner, cfg auth.Config) (svc *auth.Service, projectID, projectSecret string) {
	t.Helper()
	ctx := context.Background()
	db := OpenTestStore(t)
	kr, err := secret.NewKeyring(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if svc, err = auth.NewService(db, kr, cfg, nil); err != nil {
		t.Fatal(err)
	}
	p, sec, err := svc.CreateProject(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return svc, p.ID, sec
}

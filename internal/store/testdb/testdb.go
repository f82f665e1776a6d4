// Package testdb opens the real databases tests run on: a migrated SQLite file in the test's
// temporary folder, or an empty PostgreSQL schema of the test's own. Each registers its own
// cleanup with the test.
package testdb

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sparekey/sparekey/internal/store/postgres"
	"github.com/sparekey/sparekey/internal/store/sqlite"
)

// T is what the helpers need of a test: a testing.TB has it, and so does a harness that wraps one.
type T interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
	TempDir() string
}

var _ T = testing.TB(nil)

// SQLite opens a migrated store on a new file in tb's temporary folder, closed when tb ends.
func SQLite(tb T) *sqlite.DB {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "sparekey.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return db
}

// PostgresSchema creates an empty schema <prefix><random> in baseURL's database and returns a
// URL whose connections use it (search_path in the query). The schema is dropped when tb ends;
// cleanups run last registered first, so calling this before starting what uses the schema
// (a pool, a server) drops it only after those have stopped.
func PostgresSchema(tb T, baseURL, prefix string) string {
	tb.Helper()
	schemaURL, drop, err := postgres.NewSchema(context.Background(), baseURL, prefix)
	if err != nil {
		tb.Fatal("a schema of its own in SPAREKEY_TEST_POSTGRES_URL's database: " + err.Error())
	}
	tb.Cleanup(func() {
		if err := drop(context.Background()); err != nil {
			tb.Fatal("drop the test's schema: " + err.Error())
		}
	})
	return schemaURL
}

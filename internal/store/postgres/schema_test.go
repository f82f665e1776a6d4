package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// NewSchema gives a run a schema of its own, reached through the URL it returns, and takes it
// away with everything in it.
func TestNewSchema(t *testing.T) {
	base := testURL(t)
	ctx := context.Background()
	schemaURL, drop, err := NewSchema(ctx, base, "sk_schema_test_")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, schemaURL)
	if err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(schema, "sk_schema_test_") {
		t.Errorf("current_schema() = %q through the returned URL, want sk_schema_test_…", schema)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE probe (x integer)`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := drop(ctx); err != nil {
		t.Fatal(err)
	}
	check, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close(ctx)
	var left int
	if err := check.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, schema).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("schema %s is still there after drop", schema)
	}
	if _, _, err := NewSchema(ctx, "host=127.0.0.1 dbname=test", "sk_"); err == nil {
		t.Error("NewSchema accepted a key=value connection string, where search_path cannot go in a query")
	}
}

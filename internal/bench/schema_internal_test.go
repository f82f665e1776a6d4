package bench

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// freshSchema gives the comparison run on PostgreSQL a schema of its own, and takes it away.
func TestFreshSchema(t *testing.T) {
	base := os.Getenv("SPAREKEY_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and SPAREKEY_TEST_POSTGRES_URL is not set: this test needs PostgreSQL")
		}
		t.Skip("SPAREKEY_TEST_POSTGRES_URL is not set")
	}
	ctx := context.Background()
	dsn, drop, err := freshSchema(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(schema, "sparekey_bench_compare_") {
		t.Errorf("current_schema() = %q through the returned connection string, want sparekey_bench_compare_…", schema)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE probe (x integer)`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := drop(); err != nil {
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
}

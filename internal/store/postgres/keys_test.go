package postgres

import (
	"context"
	"slices"
	"testing"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/store/sealedcolumn"
)

// TestEverySealedColumnIsRotated holds the schema to master-key rotation: every column whose
// name starts with "sealed" is in this store's table of sealed columns, under the auth name of
// the same table and column, and that table names exactly the columns auth rotates. A new
// sealed column fails here until it is one line in sealedcolumn (and in auth's).
func TestEverySealedColumnIsRotated(t *testing.T) {
	db := openFresh(t)
	ctx := context.Background()
	rows, err := db.pool.Query(ctx, `SELECT table_name || '.' || column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND column_name LIKE 'sealed%' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var inSchema []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		inSchema = append(inSchema, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var registered []string
	for name, c := range sealedcolumn.All() {
		if string(name) != c.Table+"."+c.Value {
			t.Errorf("sealedcolumn.All()[%q] is %s.%s", name, c.Table, c.Value)
		}
		registered = append(registered, string(name))
	}
	slices.Sort(registered)
	if !slices.Equal(inSchema, registered) {
		t.Errorf("sealed columns of the schema: %q\nin sealedcolumn.All(): %q", inSchema, registered)
	}
	var rotated []string
	for _, c := range auth.SealedColumns() {
		rotated = append(rotated, string(c))
	}
	slices.Sort(rotated)
	if !slices.Equal(rotated, registered) {
		t.Errorf("auth.SealedColumns(): %q\nin sealedcolumn.All(): %q", rotated, registered)
	}
}

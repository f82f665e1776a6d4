package api

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/secret"
	"github.com/sparekey/sparekey/internal/store/sqlite"
)

// newInternalService is a real service over a temp SQLite file with one project, for the
// package's internal tests (the scenario tests in package api_test have their own harness).
func newInternalService(t *testing.T, cfg auth.Config) (svc *auth.Service, projectID, projectSecret string) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "sk.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
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

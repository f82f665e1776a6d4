package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
)

// TestChaosGetDuringRotate is the focused form of a failure the chaos test can hit by chance: a
// GET of the recovery codes that runs while a rotate commits must show the unused codes of the
// old set or the new set (CONTRACT.md §6.1: "unused codes only"; rotate replaces the set "in one
// transaction"), never a code spent before the GET was sent. Each iteration spends the first code
// of the current set (answered 200), then races one rotate against several GETs.
func TestChaosGetDuringRotate(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		chaosGetDuringRotate(t, newSQLite(t), nil)
	})
	t.Run("postgres", func(t *testing.T) {
		db := newPostgres(t)
		migratePostgres(t, db)
		chaosGetDuringRotate(t, db, []string{"--db-max-conns", replicaPoolSize})
	})
}

const (
	chaosGetIterations = 400 // a race window of microseconds: enough tries to hit it when it is open
	chaosGetsPerRotate = 12
)

func chaosGetDuringRotate(t *testing.T, db database, args []string) {
	p := createProject(t, db.URL, db.Env)
	srv := startServer(t, serverOptions{DB: db.URL, Env: db.Env, ProjectID: p.ID, Args: append([]string{"--lock-threshold", chaosLockThreshold}, args...)})
	c := srv.Client(p)
	org := createOrganization(t, c, "Get during rotate")
	const email = "get-rotate@example.com"
	id := createMember(t, c, org, email)
	migratePassword(t, c, org, email, bcryptHash(t, chaosPassword))
	current := totpCreate(t, c, org, id).Strings(t, "recovery_codes")

	for i := range chaosGetIterations {
		spent := current[0]
		ist := passwordIST(t, c, org, email, chaosPassword)
		c.ok(t, http.MethodPost, "/v1/b2b/recovery_codes/recover", recoverBody(org, id, spent, ist))
		old := current[1:]

		var wg sync.WaitGroup
		var rotated apiResponse
		var rotateErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			rotated, rotateErr = c.call(http.MethodPost, "/v1/b2b/recovery_codes/rotate", map[string]any{"organization_id": org, "member_id": id})
		}()
		shown := make([][]string, chaosGetsPerRotate)
		errs := make([]error, chaosGetsPerRotate)
		for g := range shown {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := c.call(http.MethodGet, "/v1/b2b/recovery_codes/"+org+"/"+id, nil)
				if err == nil && r.Status != http.StatusOK {
					err = fmt.Errorf("GET: HTTP %d: %s", r.Status, r.Raw)
				}
				if err == nil {
					shown[g], err = chaosCodeList(r, false)
				}
				errs[g] = err
			}()
		}
		wg.Wait()
		if rotateErr == nil && rotated.Status != http.StatusOK {
			rotateErr = fmt.Errorf("rotate: HTTP %d: %s", rotated.Status, rotated.Raw)
		}
		var next []string
		if rotateErr == nil {
			next, rotateErr = chaosCodeList(rotated, true)
		}
		for _, err := range append(errs, rotateErr) {
			if err != nil {
				t.Fatalf("iteration %d: %v", i, err)
			}
		}
		for _, got := range shown {
			if !slices.Equal(got, old) && !slices.Equal(got, next) {
				t.Fatalf("iteration %d: a GET racing a rotate showed %q; want the old set's unused codes %q or the new set %q (the code %q was spent, answered 200, before the GET was sent)",
					i, got, old, next, spent)
			}
		}
		current = next
	}
}

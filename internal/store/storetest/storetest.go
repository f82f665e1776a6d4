// Package storetest is the one conformance suite every auth.Store backend passes. It tests the
// contract written in the comments of internal/auth/store.go directly, without HTTP and without
// auth.Service: every method's results and documented errors, project scoping, alias resolution,
// cascades, expiry, search paging and, above all, atomicity under concurrent calls against the
// real database.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
)

// Run runs the conformance suite against one backend.
//
// open returns a fresh, migrated, EMPTY store for one test: no projects at all (the suite creates
// its own with CreateProject and checks that Projects returns exactly those), and isolated from
// every other store open returns, because DeleteExpired is not scoped by project and its count
// is asserted exactly. Give each call its own database, file or schema. open registers the
// store's cleanup itself with t.Cleanup (close the pool, drop the schema); Run closes nothing.
// Subtests call t.Parallel, so open is called from several goroutines at once, and every test
// also calls the store from many goroutines (up to 32 at a time) to prove atomicity: a backend
// that retries serialization failures must do so inside the method and answer with the domain
// error (auth.ErrRecoveryCodeRejected, auth.ErrISTNotFound, ...), never a driver error.
// open may call t.Fatal or t.Skip.
//
// What the suite compares exactly, so a backend knows what to return:
//   - times: whole seconds in UTC, with Location() == time.UTC (t.UTC()), zero for NULL;
//   - JSON documents (settings, profile, factors, custom claims, event data) as encoding/json
//     decodes them into the domain types: numbers inside map[string]any are float64, nested
//     objects map[string]any, arrays []any; an event without data comes back with {};
//   - events by every field, listed newest first: time, then id compared byte by byte;
//   - a nil slice or map equals an empty one (the contract does not tell them apart); every
//     other difference, []byte included, is a failure.
//
// What the suite sends: ids of the contract's form (<kind>-test-<uuid v4>; recovery codes
// member-totp-recovery-code-test-<uuid v4>), times in whole UTC seconds, and, as lookups that
// must answer with the method's not-found error rather than a fault, refs no row can hold: NUL,
// invalid UTF-8, SQL pattern characters, quotes, 5000 characters.
//
// Typical use, in the backend's own _test.go:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) auth.Store {
//			db := openFreshDatabase(t) // migrated, empty, registers t.Cleanup(db.Close)
//			return db
//		})
//	}
func Run(t *testing.T, open func(t *testing.T) auth.Store) {
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, newFixture(t, open))
				})
			}
		})
	}
}

// test is one conformance check; each gets its own empty store.
type test struct {
	name string
	run  func(t *testing.T, f *fixture)
}

type group struct {
	name  string
	tests []test
}

// groups is the whole suite, in the order of store.go.
var groups = []group{
	{"Projects", projectTests},
	{"Organizations", organizationTests},
	{"Search", searchTests},
	{"SearchLimits", searchLimitTests},
	{"Members", memberTests},
	{"Passwords", passwordTests},
	{"TOTP", totpTests},
	{"CodeOwner", codeOwnerTests},
	{"BulkLoader", bulkTests},
	{"TOTPSteps", totpStepTests},
	{"IntermediateSessions", istTests},
	{"Sessions", sessionTests},
	{"Complete", completeTests},
	{"FailedAttempts", failedAttemptTests},
	{"Atomicity", atomicityTests},
	{"Events", eventTests},
	{"Keys", keyTests},
	{"Webhooks", webhookTests},
}

// fixture is one test's store with a project in it and the clock the test controls.
type fixture struct {
	ctx     context.Context
	store   auth.Store
	now     time.Time
	project auth.Project
}

// theNow is every test's "now": stores never read a clock of their own.
var theNow = time.Date(2026, time.March, 1, 9, 30, 0, 0, time.UTC)

func newFixture(t *testing.T, open func(t *testing.T) auth.Store) *fixture {
	t.Helper()
	f := &fixture{ctx: t.Context(), store: open(t), now: theNow}
	f.project = f.createProject(t, f.now.Add(-30*24*time.Hour))
	return f
}

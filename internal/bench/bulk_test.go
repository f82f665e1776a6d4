package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/store/sqlite"
)

// TestBulkEnrollAcrossBatches loads more members than one bulk transaction holds, so several
// batches are built while others load, and checks that every member arrived once, that the
// database holds exactly them, and that codes of members from different batches recover
// through the service.
func TestBulkEnrollAcrossBatches(t *testing.T) {
	if raceDetector {
		t.Skip("12,000 members take minutes under -race; internal/auth's bulk test covers the API path")
	}
	const n = 12_000 // two full batches of 5000 and a partial one
	f := newFixture(t, openSQLite(t), auth.DefaultConfig())
	members := f.enroll(t, n)
	if len(members) != n {
		t.Fatalf("BulkEnroll reported %d members, want %d", len(members), n)
	}
	seen := map[string]bool{}
	for _, m := range members {
		if seen[m.MemberID] || len(m.RecoveryCodes) != 10 {
			t.Fatalf("member %s reported twice or with %d codes", m.MemberID, len(m.RecoveryCodes))
		}
		seen[m.MemberID] = true
	}
	ctx := context.Background()
	_, stored, err := f.store.(*sqlite.DB).Footprint(ctx)
	if err != nil || stored != n {
		t.Fatalf("the database holds %d members (%v), want %d", stored, err, n)
	}
	for _, m := range []auth.BulkEnrolled{members[0], members[5500], members[n-1]} {
		ref := auth.MemberRef{OrganizationID: m.OrganizationID, MemberID: m.MemberID}
		ists, err := f.svc.BulkIntermediateSessions(ctx, f.pid, []auth.MemberRef{ref})
		if err != nil {
			t.Fatal(err)
		}
		out, err := f.svc.Recover(ctx, f.pid, auth.RecoverInput{MemberRef: ref, RecoveryCode: m.RecoveryCodes[9],
			SessionArgs: auth.SessionArgs{IntermediateSessionToken: ists[0]}})
		if err != nil || out.RecoveryCodesRemaining != 9 || out.Session == nil || !out.Session.ExpiresAt.After(time.Now()) {
			t.Fatalf("recover member %s: %+v, %v", m.MemberID, out.RecoveryCodesRemaining, err)
		}
	}
}

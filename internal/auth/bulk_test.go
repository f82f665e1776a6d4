package auth_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/api"
	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/secret"
	"github.com/sparekey/sparekey/internal/store/sqlite"
	"github.com/sparekey/sparekey/internal/store/testdb"
	"github.com/sparekey/sparekey/internal/totp"
)

// bulkFixture is a service on a temp SQLite file with one project and two MFA organizations.
type bulkFixture struct {
	db     *sqlite.DB
	svc    *auth.Service
	pid    string
	secret string
	orgs   []string
}

func newBulkFixture(t *testing.T) *bulkFixture {
	t.Helper()
	ctx := context.Background()
	db := testdb.SQLite(t)
	master := make([]byte, secret.MasterKeySize)
	rand.Read(master)
	keys, err := secret.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := auth.NewService(db, keys, auth.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, sec, err := svc.CreateProject(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := &bulkFixture{db: db, svc: svc, pid: p.ID, secret: sec}
	for i := range 2 {
		name, policy := fmt.Sprintf("Bulk Org %d", i), auth.MFAPolicyRequiredForAll
		o, err := svc.CreateOrganization(ctx, p.ID, auth.OrganizationInput{Name: &name, MFAPolicy: &policy})
		if err != nil {
			t.Fatal(err)
		}
		f.orgs = append(f.orgs, o.ID)
	}
	return f
}

// members yields n members spread over the fixture's organizations.
func (f *bulkFixture) members(n int) iter.Seq[auth.BulkMember] {
	return func(yield func(auth.BulkMember) bool) {
		for i := range n {
			if !yield(auth.BulkMember{OrganizationID: f.orgs[i%len(f.orgs)], EmailAddress: fmt.Sprintf("Bulk%d@Example.com", i)}) {
				return
			}
		}
	}
}

func (f *bulkFixture) enroll(t *testing.T, n int) []auth.BulkEnrolled {
	t.Helper()
	var out []auth.BulkEnrolled
	err := f.svc.BulkEnroll(context.Background(), f.pid, f.members(n), func(e auth.BulkEnrolled) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != n {
		t.Fatalf("BulkEnroll reported %d members, want %d", len(out), n)
	}
	return out
}

// call sends one authenticated JSON request and decodes the JSON answer.
func call(t *testing.T, srv *httptest.Server, f *bulkFixture, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	req.SetBasicAuth(f.pid, f.secret)
	req.Header.Set("Content-Type", "application/json")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return res.StatusCode, out
}

// TestBulkEnroll shares one fixture (a project costs an RSA key, slow under -race).
func TestBulkEnroll(t *testing.T) {
	f := newBulkFixture(t)
	t.Run("refusals", func(t *testing.T) { testBulkEnrollRefusals(t, f) })
	t.Run("members work through the API", func(t *testing.T) { testBulkEnrolledMembersWorkThroughTheAPI(t, f) })
}

// testBulkEnrolledMembersWorkThroughTheAPI loads members through the bulk path and then uses
// them only through the real HTTP API: their codes show on GET, recover with an intermediate
// session from the bulk path, refuse a replay, and their TOTP secret authenticates.
func testBulkEnrolledMembersWorkThroughTheAPI(t *testing.T, f *bulkFixture) {
	if !f.svc.CanBulkLoad() {
		t.Fatal("the SQLite store does not bulk load")
	}
	enrolled := f.enroll(t, 450) // several multi-row INSERT chunks (internal/bench loads several batches)
	srv := httptest.NewServer(api.New(f.svc, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)

	seen := map[string]bool{}
	for _, e := range enrolled {
		if seen[e.MemberID] {
			t.Fatalf("member %s reported twice", e.MemberID)
		}
		seen[e.MemberID] = true
	}

	ctx := context.Background()
	for _, e := range []auth.BulkEnrolled{enrolled[0], enrolled[len(enrolled)/2], enrolled[len(enrolled)-1]} {
		path := "/v1/b2b/recovery_codes/" + e.OrganizationID + "/" + e.MemberID
		status, body := call(t, srv, f, "GET", path, nil)
		if status != 200 {
			t.Fatalf("GET %s: %d %v", path, status, body)
		}
		if got := stringList(body["recovery_codes"]); !slices.Equal(got, e.RecoveryCodes) || len(got) != 10 {
			t.Fatalf("GET codes %v, bulk load returned %v", got, e.RecoveryCodes)
		}
		if m, _ := body["member"].(map[string]any); m["totp_registration_id"] != e.RegistrationID {
			t.Errorf("member.totp_registration_id = %v, want %s", m["totp_registration_id"], e.RegistrationID)
		}

		ists, err := f.svc.BulkIntermediateSessions(ctx, f.pid, []auth.MemberRef{
			{OrganizationID: e.OrganizationID, MemberID: e.MemberID},
			{OrganizationID: e.OrganizationID, MemberID: e.MemberID},
			{OrganizationID: e.OrganizationID, MemberID: e.MemberID},
		})
		if err != nil {
			t.Fatal(err)
		}
		recoverBody := func(code, ist string) map[string]any {
			return map[string]any{"organization_id": e.OrganizationID, "member_id": e.MemberID, "recovery_code": code, "intermediate_session_token": ist}
		}
		status, body = call(t, srv, f, "POST", "/v1/b2b/recovery_codes/recover", recoverBody(e.RecoveryCodes[3], ists[0]))
		if status != 200 || body["recovery_codes_remaining"] != 9.0 {
			t.Fatalf("recover: %d %v", status, body)
		}
		status, body = call(t, srv, f, "POST", "/v1/b2b/recovery_codes/recover", recoverBody(e.RecoveryCodes[3], ists[1]))
		if status != 401 || body["error_type"] != "unable_to_authenticate_recovery_code" {
			t.Fatalf("replayed code: %d %v", status, body)
		}

		code, err := totp.Code(e.TOTPSecret, totp.Step(time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		status, body = call(t, srv, f, "POST", "/v1/b2b/totp/authenticate", map[string]any{
			"organization_id": e.OrganizationID, "member_id": e.MemberID, "code": code, "intermediate_session_token": ists[2]})
		if status != 200 {
			t.Fatalf("TOTP authenticate with the bulk-loaded secret: %d %v", status, body)
		}
	}
}

func stringList(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// testBulkEnrollRefusals: a bad address, an unknown organization and a duplicate address stop
// the load, and a refused batch leaves nothing behind. It runs on an empty project.
func testBulkEnrollRefusals(t *testing.T, f *bulkFixture) {
	ctx := context.Background()
	one := func(bm ...auth.BulkMember) iter.Seq[auth.BulkMember] { return slices.Values(bm) }
	ignore := func(auth.BulkEnrolled) error { return nil }

	for _, tc := range []struct {
		name    string
		members iter.Seq[auth.BulkMember]
		want    error
	}{
		{"bad address", one(auth.BulkMember{OrganizationID: f.orgs[0], EmailAddress: "not an address"}), auth.ErrInvalidEmail},
		{"unknown organization", one(auth.BulkMember{OrganizationID: "organization-test-00000000-0000-4000-8000-000000000000", EmailAddress: "a@example.com"}), auth.ErrOrganizationNotFound},
		{"duplicate address", one(
			auth.BulkMember{OrganizationID: f.orgs[0], EmailAddress: "dup@example.com"},
			auth.BulkMember{OrganizationID: f.orgs[0], EmailAddress: "DUP@example.com"}), auth.ErrDuplicateMemberEmail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.svc.BulkEnroll(ctx, f.pid, tc.members, ignore)
			if !errors.Is(err, tc.want) {
				t.Fatalf("BulkEnroll: %v, want %v", err, tc.want)
			}
		})
	}
	if _, members, err := f.db.Footprint(ctx); err != nil || members != 0 {
		t.Fatalf("after refused loads the database holds %d members (%v), want 0", members, err)
	}

	stop := errors.New("stop")
	calls := 0
	err := f.svc.BulkEnroll(ctx, f.pid, one(
		auth.BulkMember{OrganizationID: f.orgs[0], EmailAddress: "stop1@example.com"},
		auth.BulkMember{OrganizationID: f.orgs[0], EmailAddress: "stop2@example.com"}), func(auth.BulkEnrolled) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("an error from each: BulkEnroll returned %v after %d calls, want it after 1", err, calls)
	}
}

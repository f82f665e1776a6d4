package client_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sparekey/sparekey/client"
	"github.com/sparekey/sparekey/internal/totp"
)

// TestStandardLibraryOnly keeps client/ importable without pulling in any module.
func TestStandardLibraryOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	got := strings.Fields(string(out))
	if len(got) != 1 || got[0] != "github.com/sparekey/sparekey/client" {
		t.Errorf("client/ depends on non-standard packages: %v", got)
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	for _, tc := range []struct{ url, pid, secret string }{
		{"127.0.0.1:8080", "p", "s"},
		{"ftp://127.0.0.1", "p", "s"},
		{"http://", "p", "s"},
		{"http://127.0.0.1:8080/prefix", "p", "s"},
		{"http://127.0.0.1:8080/?x=1", "p", "s"},
		{"http://127.0.0.1:8080", "", "s"},
		{"http://127.0.0.1:8080", "p", ""},
	} {
		if _, err := client.New(tc.url, tc.pid, tc.secret); err == nil {
			t.Errorf("New(%q, %q, %q) succeeded", tc.url, tc.pid, tc.secret)
		}
	}
	for _, opt := range []client.Option{client.WithHTTPClient(nil), client.WithTimeout(-1), client.WithJWTLeeway(-time.Second), client.WithJWKSMaxAge(0), client.WithClock(nil)} {
		if _, err := client.New("http://127.0.0.1:8080", "p", "s", opt); err == nil {
			t.Error("New accepted a bad option")
		}
	}
	if _, err := client.New("https://sparekey.example.com/", "p", "s"); err != nil {
		t.Errorf("New with a trailing slash: %v", err)
	}
}

// TestOrganizationsAndMembers drives the remaining organization and member endpoints, checking
// that explicit zero values are sent and honoured.
func TestOrganizationsAndMembers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	sk := newSparekey(t, clock.Now)
	c, rec := newClient(t, sk, clock)

	created, err := c.Organizations.Create(ctx, client.CreateOrganizationParams{
		OrganizationName: "Globex",
		OrganizationFields: client.OrganizationFields{
			OrganizationSlug:       client.String("globex"),
			OrganizationExternalID: client.String("ext|globex"),
			OrganizationLogoURL:    client.String("https://globex.example/logo.png"),
			TrustedMetadata:        map[string]any{"tier": "gold"},
			MFAMethods:             client.String("RESTRICTED"),
			AllowedMFAMethods:      []string{"totp"},
			EmailAllowedDomains:    []string{"globex.example"},
			RBACEmailImplicitRoleAssignments: []client.RBACEmailImplicitRoleAssignment{
				{Domain: "globex.example", RoleID: "stytch_admin"},
			},
			AllowedOAuthTenants: map[string][]string{"slack": {"T123"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, rec, created)
	org := created.Organization
	want := wantOrganization(org.OrganizationID, "Globex", "globex", "OPTIONAL", clock.Now())
	want.OrganizationExternalID = "ext|globex"
	want.OrganizationLogoURL = "https://globex.example/logo.png"
	want.TrustedMetadata = map[string]any{"tier": "gold"}
	want.MFAMethods = "RESTRICTED"
	want.AllowedMFAMethods = []string{"totp"}
	want.EmailAllowedDomains = []string{"globex.example"}
	want.RBACEmailImplicitRoleAssignments = []client.RBACEmailImplicitRoleAssignment{{Domain: "globex.example", RoleID: "stytch_admin"}}
	want.AllowedOAuthTenants = map[string][]string{"slack": {"T123"}}
	equal(t, "created organization", org, want)

	for _, ref := range []string{org.OrganizationID, "globex", "ext|globex"} {
		got, err := c.Organizations.Get(ctx, client.GetOrganizationParams{OrganizationID: ref})
		if err != nil {
			t.Fatalf("get %q: %v", ref, err)
		}
		sameJSON(t, rec, got)
		equal(t, "organization by "+ref, got.Organization, want)
	}

	// Explicit zeros: "" clears the logo, {} empties the metadata, [] the domains.
	clock.Advance(time.Minute)
	updated, err := c.Organizations.Update(ctx, client.UpdateOrganizationParams{
		OrganizationID: "globex",
		OrganizationFields: client.OrganizationFields{
			OrganizationLogoURL: client.String(""),
			TrustedMetadata:     map[string]any{},
			EmailAllowedDomains: []string{},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	sentJSON(t, rec, `{"organization_logo_url":"","trusted_metadata":{},"email_allowed_domains":[]}`)
	sameJSON(t, rec, updated)
	want.OrganizationLogoURL, want.TrustedMetadata, want.EmailAllowedDomains, want.UpdatedAt = "", map[string]any{}, []string{}, clock.Now()
	equal(t, "updated organization", updated.Organization, want)

	search, err := c.Organizations.Search(ctx, client.SearchOrganizationsParams{
		Limit: client.Int(10),
		Query: &client.SearchQuery{Operator: "AND", Operands: []client.SearchOperand{{FilterName: "organization_slugs", FilterValue: []string{"globex"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, rec, search)
	ok(t, search.RequestID, search.StatusCode)
	if len(search.Organizations) != 1 || search.ResultsMetadata.Total != 1 || search.ResultsMetadata.NextCursor != nil {
		t.Errorf("search: %d organizations, metadata %+v", len(search.Organizations), search.ResultsMetadata)
	} else {
		equal(t, "found organization", search.Organizations[0], want)
	}
	_, err = c.Organizations.Search(ctx, client.SearchOrganizationsParams{Query: &client.SearchQuery{Operator: "AND", Operands: []client.SearchOperand{{FilterName: "nope", FilterValue: "x"}}}})
	apiError(t, err, 400, "organization_search_filter_name_not_recognized")

	// Members.
	mc, err := c.Members.Create(ctx, client.CreateMemberParams{
		OrganizationID:        "globex",
		EmailAddress:          "hank@globex.example",
		Name:                  client.String("Hank"),
		ExternalID:            client.String("hank-1"),
		TrustedMetadata:       map[string]any{"badge": 7},
		UntrustedMetadata:     map[string]any{"theme": "dark"},
		CreateMemberAsPending: client.Bool(true),
		IsBreakglass:          client.Bool(true),
		MFAPhoneNumber:        client.String("+15551231234"),
		Roles:                 []string{"stytch_admin"},
	})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, rec, mc)
	wm := wantMember(org.OrganizationID, mc.MemberID, "hank@globex.example", clock.Now())
	wm.Status, wm.Name, wm.ExternalID, wm.IsBreakglass, wm.IsAdmin, wm.MFAPhoneNumber = "pending", "Hank", "hank-1", true, true, "+15551231234"
	wm.TrustedMetadata, wm.UntrustedMetadata = map[string]any{"badge": float64(7)}, map[string]any{"theme": "dark"}
	wm.Roles = append(wm.Roles, client.MemberRole{RoleID: "stytch_admin", Sources: []client.MemberRoleSource{{Type: "direct_assignment", Details: map[string]any{}}}})
	equal(t, "created member", mc.Member, wm)
	equal(t, "member's organization", mc.Organization, want)

	for _, p := range []client.GetMemberParams{
		{OrganizationID: "globex", MemberID: mc.MemberID},
		{OrganizationID: "globex", MemberID: "hank-1"},
		{OrganizationID: "globex", EmailAddress: "HANK@globex.example"},
	} {
		got, err := c.Members.Get(ctx, p)
		if err != nil {
			t.Fatalf("get %+v: %v", p, err)
		}
		sameJSON(t, rec, got)
		equal(t, fmt.Sprintf("member by %+v", p), got.Member, wm)
	}
	_, err = c.Members.Get(ctx, client.GetMemberParams{OrganizationID: "globex", EmailAddress: "nobody@globex.example"})
	apiError(t, err, 404, "member_not_found")

	// Explicit false and "" on update; a new address retires the old one.
	clock.Advance(time.Minute)
	mu, err := c.Members.Update(ctx, client.UpdateMemberParams{
		OrganizationID: "globex", MemberID: mc.MemberID,
		Name: client.String(""), IsBreakglass: client.Bool(false), Roles: []string{},
		EmailAddress: client.String("henry@globex.example"),
	})
	if err != nil {
		t.Fatal(err)
	}
	sentJSON(t, rec, `{"name":"","email_address":"henry@globex.example","is_breakglass":false,"roles":[]}`)
	sameJSON(t, rec, mu)
	if mu.Member.Name != "" || mu.Member.IsBreakglass || mu.Member.IsAdmin || len(mu.Member.Roles) != 1 || mu.Member.EmailAddress != "henry@globex.example" ||
		len(mu.Member.RetiredEmailAddresses) != 1 || mu.Member.RetiredEmailAddresses[0].EmailAddress != "hank@globex.example" ||
		!strings.HasPrefix(mu.Member.RetiredEmailAddresses[0].EmailID, "email-test-") || !mu.Member.UpdatedAt.Equal(clock.Now()) {
		t.Errorf("updated member: %+v", mu.Member)
	}

	// TOTP migrate, then TOTP delete, then member delete.
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	migrated, err := c.TOTPs.Migrate(ctx, client.MigrateTOTPParams{OrganizationID: "globex", MemberID: "hank-1", Secret: secret, RecoveryCodes: []string{"abcd-efgh-jkmn", "pqrs-tvwx-yz01"}})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, rec, migrated)
	ok(t, migrated.RequestID, migrated.StatusCode)
	match(t, "totp_registration_id", totpIDPattern, migrated.TOTPRegistrationID)
	equal(t, "imported codes", migrated.RecoveryCodes, []string{"abcd-efgh-jkmn", "pqrs-tvwx-yz01"})
	if migrated.MemberID != mc.MemberID || migrated.Member.TOTPRegistrationID != migrated.TOTPRegistrationID {
		t.Errorf("migrate: member %s registration %s", migrated.MemberID, migrated.Member.TOTPRegistrationID)
	}
	_, err = c.TOTPs.Migrate(ctx, client.MigrateTOTPParams{OrganizationID: "globex", MemberID: "hank-1", Secret: secret})
	apiError(t, err, 400, "active_totp_exists")

	dt, err := c.Members.DeleteTOTP(ctx, client.DeleteTOTPParams{OrganizationID: "globex", MemberID: mc.MemberID})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, rec, dt)
	if dt.Member.TOTPRegistrationID != "" || dt.MemberID != mc.MemberID {
		t.Errorf("after TOTP delete: %+v", dt.Member)
	}
	if ex := rec.last(t); ex.Method != "DELETE" || len(ex.RequestBody) != 0 {
		t.Errorf("TOTP delete sent %s with body %q", ex.Method, ex.RequestBody)
	}
	_, err = c.Members.DeleteTOTP(ctx, client.DeleteTOTPParams{OrganizationID: "globex", MemberID: mc.MemberID})
	apiError(t, err, 404, "totp_not_found")

	dm, err := c.Members.Delete(ctx, client.DeleteMemberParams{OrganizationID: "globex", MemberID: mc.MemberID})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, rec, dm)
	ok(t, dm.RequestID, dm.StatusCode)
	if dm.MemberID != mc.MemberID {
		t.Errorf("deleted member_id %s", dm.MemberID)
	}
	_, err = c.Members.Get(ctx, client.GetMemberParams{OrganizationID: "globex", MemberID: mc.MemberID})
	apiError(t, err, 404, "member_not_found")

	do, err := c.Organizations.Delete(ctx, client.DeleteOrganizationParams{OrganizationID: "ext|globex"})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, rec, do)
	if do.OrganizationID != org.OrganizationID {
		t.Errorf("deleted organization_id %s", do.OrganizationID)
	}
	if ex := rec.last(t); ex.Path != "/v1/b2b/organizations/ext%7Cglobex" {
		t.Errorf("path segment not escaped: %s", ex.Path)
	}
	_, err = c.Organizations.Get(ctx, client.GetOrganizationParams{OrganizationID: org.OrganizationID})
	apiError(t, err, 404, "organization_not_found")
}

// TestTOTPAndSessions covers TOTP authenticate and the session endpoints, including the
// member-session headers of organization writes.
func TestTOTPAndSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	sk := newSparekey(t, clock.Now)
	c, rec := newClient(t, sk, clock)
	m := newMFAMember(t, c, "Initech")

	code, err := totp.Code(m.totpSecret, totp.Step(clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	ta, err := c.TOTPs.Authenticate(ctx, client.AuthenticateTOTPParams{
		OrganizationID: m.orgID, MemberID: m.memberID, Code: code, IntermediateSessionToken: m.ist,
		SetDefaultMFA: client.Bool(false), SetMFAEnrollment: client.String("enroll"),
	})
	if err != nil {
		t.Fatal(err)
	}
	sentJSON(t, rec, fmt.Sprintf(`{"organization_id":%q,"member_id":%q,"code":%q,"intermediate_session_token":%q,"set_default_mfa":false,"set_mfa_enrollment":"enroll"}`,
		m.orgID, m.memberID, code, m.ist))
	sameJSON(t, rec, ta)
	ok(t, ta.RequestID, ta.StatusCode)
	factors := ta.MemberSession.AuthenticationFactors
	if len(factors) != 2 || factors[1].Type != "totp" || factors[1].AuthenticatorAppFactor == nil || factors[1].AuthenticatorAppFactor.TOTPID != ta.Member.TOTPRegistrationID {
		t.Errorf("TOTP session factors: %+v", factors)
	}
	if !ta.Member.MFAEnrolled || ta.Member.DefaultMFAMethod != "totp" || ta.SessionToken == "" || ta.MemberDevice != nil {
		t.Errorf("after TOTP authenticate: enrolled %v default %q", ta.Member.MFAEnrolled, ta.Member.DefaultMFAMethod)
	}
	_, err = c.TOTPs.Authenticate(ctx, client.AuthenticateTOTPParams{OrganizationID: m.orgID, MemberID: m.memberID, Code: code, SessionToken: ta.SessionToken})
	apiError(t, err, 400, "totp_code_already_authenticated")
	_, err = c.TOTPs.Authenticate(ctx, client.AuthenticateTOTPParams{OrganizationID: m.orgID, MemberID: m.memberID, Code: m.codes[0], SessionToken: ta.SessionToken})
	apiError(t, err, 400, "recovery_code_used_as_totp_code")

	// A password login with a live session of the member needs no second factor.
	pw, err := c.Passwords.Authenticate(ctx, client.AuthenticatePasswordParams{
		OrganizationID: m.orgID, EmailAddress: m.email, Password: m.password, SessionJWT: ta.SessionJWT, SessionDurationMinutes: client.Int(30),
	})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, rec, pw)
	if !pw.MemberAuthenticated || pw.MemberSession == nil || pw.SessionToken != "" || pw.SessionJWT == "" || pw.IntermediateSessionToken != "" ||
		pw.IntermediateSessionTokenExpiresAt != nil || pw.MFARequired != nil || pw.PrimaryRequired != nil {
		t.Errorf("password login on a session: %+v", pw)
	} else if pw.MemberSession.MemberSessionID != ta.MemberSession.MemberSessionID || !pw.MemberSession.ExpiresAt.Equal(clock.Now().Add(30*time.Minute)) {
		t.Errorf("password login extended session %+v", pw.MemberSession)
	}

	// Sessions: list, authenticate with an authorization check, JWKS, revoke.
	list, err := c.Sessions.Get(ctx, client.GetSessionsParams{OrganizationID: m.orgID, MemberID: m.memberID})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, rec, list)
	ok(t, list.RequestID, list.StatusCode)
	if len(list.MemberSessions) != 1 || list.MemberSessions[0].MemberSessionID != ta.MemberSession.MemberSessionID {
		t.Errorf("sessions: %+v", list.MemberSessions)
	}
	_, err = c.Sessions.Authenticate(ctx, client.AuthenticateSessionParams{
		SessionJWT:         ta.SessionJWT,
		AuthorizationCheck: &client.AuthorizationCheck{OrganizationID: m.orgID, ResourceID: "documents", Action: "read"},
	})
	apiError(t, err, 403, "session_authorization_error")
	if _, err := c.Members.Update(ctx, client.UpdateMemberParams{OrganizationID: m.orgID, MemberID: m.memberID, Roles: []string{"stytch_admin"}}); err != nil {
		t.Fatal(err)
	}
	sa, err := c.Sessions.Authenticate(ctx, client.AuthenticateSessionParams{
		SessionJWT:          ta.SessionJWT,
		SessionCustomClaims: map[string]any{"plan": "pro"},
		AuthorizationCheck:  &client.AuthorizationCheck{OrganizationID: m.orgID, ResourceID: "documents", Action: "read"},
	})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, rec, sa)
	equal(t, "verdict", sa.Verdict, &client.Verdict{Authorized: true, GrantingRoles: []string{"stytch_admin"}})
	if sa.SessionToken != "" || sa.MemberSession.CustomClaims["plan"] != "pro" {
		t.Errorf("authenticate by JWT: token %q claims %v", sa.SessionToken, sa.MemberSession.CustomClaims)
	}
	equal(t, "roles", sa.MemberSession.Roles, []string{"stytch_member", "stytch_admin"})

	// Member-session headers: an admin's session may update its own organization.
	_, err = c.Organizations.Update(ctx, client.UpdateOrganizationParams{
		OrganizationID: m.orgID, OrganizationName: client.String("Initech 2"), Authorization: client.Authorization{SessionToken: ta.SessionToken},
	})
	if err != nil {
		t.Fatalf("update with an admin session: %v", err)
	}
	if h := rec.last(t).Header.Get("X-Stytch-Member-Session"); h != ta.SessionToken {
		t.Errorf("X-Stytch-Member-Session = %q", h)
	}
	_, err = c.Organizations.Update(ctx, client.UpdateOrganizationParams{
		OrganizationID: m.orgID, OrganizationName: client.String("Initech 3"), Authorization: client.Authorization{SessionJWT: "not-a-jwt"},
	})
	apiError(t, err, 400, "unable_to_parse_session_jwt")

	jwks, err := c.Sessions.GetJWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, rec, jwks)
	ok(t, jwks.RequestID, jwks.StatusCode)
	if ex := rec.last(t); ex.Header.Get("Authorization") != "" || ex.Path != "/v1/b2b/sessions/jwks/"+sk.ProjectID {
		t.Errorf("JWKS fetch: path %s, Authorization %q", ex.Path, ex.Header.Get("Authorization"))
	}
	if len(jwks.Keys) != 1 {
		t.Fatalf("%d keys", len(jwks.Keys))
	}
	k := jwks.Keys[0]
	match(t, "kid", jwkIDPattern, k.KID)
	if k.Alg != "RS256" || k.Kty != "RSA" || k.Use != "sig" || k.E != "AQAB" || len(k.KeyOps) != 1 || k.KeyOps[0] != "verify" || len(k.X5C) != 1 || len(k.X5TS256) != 43 || len(k.N) != 342 {
		t.Errorf("JWK: %+v", k)
	}

	rv, err := c.Sessions.Revoke(ctx, client.RevokeSessionParams{MemberSessionID: ta.MemberSession.MemberSessionID})
	if err != nil {
		t.Fatal(err)
	}
	sentJSON(t, rec, fmt.Sprintf(`{"member_session_id":%q}`, ta.MemberSession.MemberSessionID))
	sameJSON(t, rec, rv)
	ok(t, rv.RequestID, rv.StatusCode)
	_, err = c.Sessions.Authenticate(ctx, client.AuthenticateSessionParams{SessionToken: ta.SessionToken})
	apiError(t, err, 404, "session_not_found")
	_, err = c.Sessions.Revoke(ctx, client.RevokeSessionParams{})
	apiError(t, err, 400, "no_session_revoke_arguments")
	// A revoked session's JWT still passes local checks until its exp (CONTRACT.md §6.6)...
	if _, err := c.Sessions.AuthenticateJWTLocal(ctx, sa.SessionJWT); err != nil {
		t.Errorf("local check of a revoked session's JWT before exp: %v", err)
	}
	// ... and no longer after it.
	clock.Advance(5 * time.Minute)
	if _, err := c.Sessions.AuthenticateJWTLocal(ctx, sa.SessionJWT); err == nil {
		t.Error("local check of an expired JWT passed")
	}
}

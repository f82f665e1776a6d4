package client_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sparekey/sparekey/client"
)

const uuidV4 = `[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`

var (
	requestIDPattern    = regexp.MustCompile(`^request-id-test-` + uuidV4 + `$`)
	organizationPattern = regexp.MustCompile(`^organization-test-` + uuidV4 + `$`)
	memberPattern       = regexp.MustCompile(`^member-test-` + uuidV4 + `$`)
	sessionIDPattern    = regexp.MustCompile(`^member-session-test-` + uuidV4 + `$`)
	totpIDPattern       = regexp.MustCompile(`^member-totp-test-` + uuidV4 + `$`)
	passwordIDPattern   = regexp.MustCompile(`^member-password-test-` + uuidV4 + `$`)
	codeIDPattern       = regexp.MustCompile(`^member-totp-recovery-code-test-` + uuidV4 + `$`)
	jwkIDPattern        = regexp.MustCompile(`^jwk-test-` + uuidV4 + `$`)
	tokenPattern        = regexp.MustCompile(`^[A-Za-z0-9_-]{44}$`)
	codePattern         = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$`)
	totpSecretPattern   = regexp.MustCompile(`^[A-Z2-7]{32}$`)
	jwtPattern          = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)
)

func itoa(n int) string { return strconv.Itoa(n) }

func match(t *testing.T, what string, re *regexp.Regexp, s string) {
	t.Helper()
	if !re.MatchString(s) {
		t.Errorf("%s = %q, want %s", what, s, re)
	}
}

// wantOrganization is an organization with every default of CONTRACT.md §5.1.
func wantOrganization(id, name, slug, mfaPolicy string, at time.Time) client.Organization {
	return client.Organization{
		OrganizationID:                       id,
		OrganizationName:                     name,
		OrganizationSlug:                     slug,
		OrganizationLogoURL:                  "",
		OrganizationExternalID:               "",
		TrustedMetadata:                      map[string]any{},
		MFAPolicy:                            mfaPolicy,
		MFAMethods:                           "ALL_ALLOWED",
		AllowedMFAMethods:                    []string{},
		AuthMethods:                          "ALL_ALLOWED",
		AllowedAuthMethods:                   []string{},
		SSOJITProvisioning:                   "ALL_ALLOWED",
		SSOJITProvisioningAllowedConnections: []string{},
		EmailInvites:                         "ALL_ALLOWED",
		EmailJITProvisioning:                 "NOT_ALLOWED",
		OAuthTenantJITProvisioning:           "NOT_ALLOWED",
		FirstPartyConnectedAppsAllowedType:   "ALL_ALLOWED",
		ThirdPartyConnectedAppsAllowedType:   "ALL_ALLOWED",
		AllowedFirstPartyConnectedApps:       []string{},
		AllowedThirdPartyConnectedApps:       []string{},
		EmailAllowedDomains:                  []string{},
		ClaimedEmailDomains:                  []string{},
		RBACEmailImplicitRoleAssignments:     []client.RBACEmailImplicitRoleAssignment{},
		AllowedOAuthTenants:                  map[string][]string{},
		SSOActiveConnections:                 []client.SSOActiveConnection{},
		CustomRoles:                          []client.CustomRole{},
		SSODefaultConnectionID:               nil,
		SCIMActiveConnection:                 nil,
		CreatedAt:                            at,
		UpdatedAt:                            at,
	}
}

// wantMember is a member with every default of CONTRACT.md §5.2.
func wantMember(orgID, id, email string, at time.Time) client.Member {
	return client.Member{
		OrganizationID:         orgID,
		MemberID:               id,
		EmailAddress:           email,
		Status:                 "active",
		Name:                   "",
		ExternalID:             "",
		EmailAddressVerified:   false,
		MFAPhoneNumberVerified: false,
		RetiredEmailAddresses:  []client.RetiredEmailAddress{},
		IsBreakglass:           false,
		IsAdmin:                false,
		Roles: []client.MemberRole{{RoleID: "stytch_member", Sources: []client.MemberRoleSource{
			{Type: "direct_assignment", Details: map[string]any{}},
		}}},
		MFAEnrolled:        false,
		MFAPhoneNumber:     "",
		DefaultMFAMethod:   "",
		TOTPRegistrationID: "",
		MemberPasswordID:   "",
		IsLocked:           false,
		LockCreatedAt:      nil,
		LockExpiresAt:      nil,
		SSORegistrations:   []map[string]any{},
		OAuthRegistrations: []map[string]any{},
		SCIMRegistration:   nil,
		TrustedMetadata:    map[string]any{},
		UntrustedMetadata:  map[string]any{},
		CreatedAt:          at,
		UpdatedAt:          at,
	}
}

func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func ok(t *testing.T, requestID string, statusCode int) {
	t.Helper()
	match(t, "request_id", requestIDPattern, requestID)
	if statusCode != 200 {
		t.Errorf("status_code = %d, want 200", statusCode)
	}
}

func wrongCode(i int) string { return fmt.Sprintf("0000-0000-%04d", i) }

// TestRecoveryCodeLifeCycle drives the whole MFA login around the recovery codes through the
// client against a real server, checking every field of each typed answer.
func TestRecoveryCodeLifeCycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	sk := newSparekey(t, clock.Now)
	c, rec := newClient(t, sk, clock)
	t0 := clock.Now()

	// An organization that requires MFA of everyone.
	orgResp, err := c.Organizations.Create(ctx, client.CreateOrganizationParams{
		OrganizationName:   "Acme Inc",
		OrganizationFields: client.OrganizationFields{MFAPolicy: client.String("REQUIRED_FOR_ALL")},
	})
	if err != nil {
		t.Fatal(err)
	}
	sentJSON(t, rec, `{"organization_name":"Acme Inc","mfa_policy":"REQUIRED_FOR_ALL"}`)
	sameJSON(t, rec, orgResp)
	ok(t, orgResp.RequestID, orgResp.StatusCode)
	orgID := orgResp.Organization.OrganizationID
	match(t, "organization_id", organizationPattern, orgID)
	wantOrg := wantOrganization(orgID, "Acme Inc", "acme-inc", "REQUIRED_FOR_ALL", t0)
	equal(t, "created organization", orgResp.Organization, wantOrg)

	// A member.
	memResp, err := c.Members.Create(ctx, client.CreateMemberParams{OrganizationID: orgID, EmailAddress: "Ada@Example.com"})
	if err != nil {
		t.Fatal(err)
	}
	sentJSON(t, rec, `{"email_address":"Ada@Example.com"}`)
	sameJSON(t, rec, memResp)
	ok(t, memResp.RequestID, memResp.StatusCode)
	memberID := memResp.MemberID
	match(t, "member_id", memberPattern, memberID)
	wantMem := wantMember(orgID, memberID, "ada@example.com", t0)
	equal(t, "created member", memResp.Member, wantMem)
	equal(t, "member create organization", memResp.Organization, wantOrg)

	// Their password, imported from another system.
	const password = "correct horse battery staple"
	hash, cfg := pbkdf2Hash(password)
	mig, err := c.Passwords.Migrate(ctx, client.MigratePasswordParams{
		OrganizationID: orgID, EmailAddress: "ada@example.com", Hash: hash, HashType: "pbkdf_2", PBKDF2Config: cfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, rec, mig)
	ok(t, mig.RequestID, mig.StatusCode)
	if mig.MemberID != memberID || mig.MemberCreated {
		t.Errorf("migrate: member_id %s created %v, want %s false", mig.MemberID, mig.MemberCreated, memberID)
	}
	match(t, "member_password_id", passwordIDPattern, mig.Member.MemberPasswordID)
	wantMem.MemberPasswordID = mig.Member.MemberPasswordID
	equal(t, "member after migrate", mig.Member, wantMem)
	equal(t, "migrate organization", mig.Organization, wantOrg)

	// An authenticator app, which issues the recovery codes.
	totp, err := c.TOTPs.Create(ctx, client.CreateTOTPParams{OrganizationID: orgID, MemberID: memberID})
	if err != nil {
		t.Fatal(err)
	}
	sentJSON(t, rec, fmt.Sprintf(`{"organization_id":%q,"member_id":%q}`, orgID, memberID))
	sameJSON(t, rec, totp)
	ok(t, totp.RequestID, totp.StatusCode)
	match(t, "totp_registration_id", totpIDPattern, totp.TOTPRegistrationID)
	match(t, "secret", totpSecretPattern, totp.Secret)
	if !regexp.MustCompile(`^data:image/png;base64,[A-Za-z0-9+/]+=*$`).MatchString(totp.QRCode) {
		t.Errorf("qr_code = %.40q…", totp.QRCode)
	}
	if totp.MemberID != memberID || len(totp.RecoveryCodes) != 10 {
		t.Fatalf("totp create: member_id %s, %d codes", totp.MemberID, len(totp.RecoveryCodes))
	}
	for _, code := range totp.RecoveryCodes {
		match(t, "recovery code", codePattern, code)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(totp.RecoveryCodes)))) != 10 {
		t.Errorf("recovery codes repeat: %v", totp.RecoveryCodes)
	}
	wantMem.TOTPRegistrationID = totp.TOTPRegistrationID
	equal(t, "member after TOTP create", totp.Member, wantMem)
	codes := totp.RecoveryCodes

	// The password login: MFA is required, so an intermediate session comes back.
	login, err := c.Passwords.Authenticate(ctx, client.AuthenticatePasswordParams{OrganizationID: "acme-inc", EmailAddress: "ada@example.com", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, rec, login)
	ok(t, login.RequestID, login.StatusCode)
	match(t, "intermediate_session_token", tokenPattern, login.IntermediateSessionToken)
	istExpiry := t0.Add(10 * time.Minute)
	equal(t, "intermediate_session_token_expires_at", login.IntermediateSessionTokenExpiresAt, &istExpiry)
	equal(t, "mfa_required", login.MFARequired, &client.MFARequired{MemberOptions: client.MemberOptions{TOTPRegistrationID: totp.TOTPRegistrationID}})
	if login.MemberID != memberID || login.OrganizationID != orgID || login.MemberAuthenticated ||
		login.SessionToken != "" || login.SessionJWT != "" || login.MemberSession != nil || login.PrimaryRequired != nil || login.MemberDevice != nil {
		t.Errorf("password login with MFA pending: %+v", login)
	}
	equal(t, "login member", login.Member, wantMem)
	equal(t, "login organization", login.Organization, wantOrg)

	// The recovery code completes the login.
	clock.Advance(time.Minute)
	t1 := clock.Now()
	recovered, err := c.RecoveryCodes.Recover(ctx, client.RecoverParams{
		OrganizationID:           orgID,
		MemberID:                 memberID,
		RecoveryCode:             codes[0],
		IntermediateSessionToken: login.IntermediateSessionToken,
		SessionDurationMinutes:   client.Int(120),
		SessionCustomClaims:      map[string]any{"team": "blue", "level": 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	sentJSON(t, rec, fmt.Sprintf(`{"organization_id":%q,"member_id":%q,"recovery_code":%q,"intermediate_session_token":%q,
		"session_duration_minutes":120,"session_custom_claims":{"team":"blue","level":3}}`, orgID, memberID, codes[0], login.IntermediateSessionToken))
	sameJSON(t, rec, recovered)
	ok(t, recovered.RequestID, recovered.StatusCode)
	match(t, "session_token", tokenPattern, recovered.SessionToken)
	match(t, "session_jwt", jwtPattern, recovered.SessionJWT)
	if recovered.MemberID != memberID || recovered.RecoveryCodesRemaining != 9 || recovered.MemberDevice != nil {
		t.Errorf("recover: member_id %s remaining %d device %v", recovered.MemberID, recovered.RecoveryCodesRemaining, recovered.MemberDevice)
	}
	wantMem.MFAEnrolled = true // REQUIRED_FOR_ALL
	wantMem.UpdatedAt = t1
	equal(t, "member after recover", recovered.Member, wantMem)
	equal(t, "recover organization", recovered.Organization, wantOrg)
	sess := recovered.MemberSession
	match(t, "member_session_id", sessionIDPattern, sess.MemberSessionID)
	if len(sess.AuthenticationFactors) == 2 {
		match(t, "totp_recovery_code_id", codeIDPattern, sess.AuthenticationFactors[1].RecoveryCodeFactor.TOTPRecoveryCodeID)
	}
	wantSess := client.MemberSession{
		MemberSessionID:  sess.MemberSessionID,
		MemberID:         memberID,
		OrganizationID:   orgID,
		OrganizationSlug: "acme-inc",
		StartedAt:        t1,
		LastAccessedAt:   t1,
		ExpiresAt:        t1.Add(120 * time.Minute),
		AuthenticationFactors: []client.AuthenticationFactor{
			{Type: "password", DeliveryMethod: "knowledge", CreatedAt: t0, UpdatedAt: t0, LastAuthenticatedAt: t0},
			{Type: "recovery_codes", DeliveryMethod: "recovery_code", CreatedAt: t1, UpdatedAt: t1, LastAuthenticatedAt: t1,
				RecoveryCodeFactor: &client.RecoveryCodeFactor{TOTPRecoveryCodeID: codeIDOf(sess)}},
		},
		Roles:        []string{"stytch_member"},
		CustomClaims: map[string]any{"team": "blue", "level": float64(3)},
	}
	equal(t, "member_session", sess, wantSess)

	// The session works on the server, which answers with a fresh JWT.
	clock.Advance(time.Minute)
	t2 := clock.Now()
	authd, err := c.Sessions.Authenticate(ctx, client.AuthenticateSessionParams{SessionToken: recovered.SessionToken})
	if err != nil {
		t.Fatal(err)
	}
	sentJSON(t, rec, fmt.Sprintf(`{"session_token":%q}`, recovered.SessionToken))
	sameJSON(t, rec, authd)
	ok(t, authd.RequestID, authd.StatusCode)
	if authd.SessionToken != recovered.SessionToken || authd.Verdict != nil {
		t.Errorf("sessions authenticate: token echoed %v, verdict %v", authd.SessionToken == recovered.SessionToken, authd.Verdict)
	}
	match(t, "session_jwt", jwtPattern, authd.SessionJWT)
	wantSess.LastAccessedAt = t2
	equal(t, "authenticated session", authd.MemberSession, wantSess)
	equal(t, "authenticated member", authd.Member, wantMem)

	// ... and locally, without a call per JWT: the JWT carries the same session.
	local, err := c.Sessions.AuthenticateJWTLocal(ctx, authd.SessionJWT)
	if err != nil {
		t.Fatalf("AuthenticateJWTLocal: %v", err)
	}
	equal(t, "local session", *local, wantSess)
	wantSess.LastAccessedAt = t1
	local, err = c.Sessions.AuthenticateJWTLocal(ctx, recovered.SessionJWT)
	if err != nil {
		t.Fatalf("AuthenticateJWTLocal of the recover JWT: %v", err)
	}
	equal(t, "local session from recover's JWT", *local, wantSess)

	// Nine codes are left, in issue order.
	got, err := c.RecoveryCodes.Get(ctx, client.GetParams{OrganizationID: orgID, MemberID: memberID})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, rec, got)
	ok(t, got.RequestID, got.StatusCode)
	if ex := rec.last(t); ex.Method != "GET" || ex.Path != "/v1/b2b/recovery_codes/"+orgID+"/"+memberID || len(ex.RequestBody) != 0 {
		t.Errorf("get sent %s %s with body %q", ex.Method, ex.Path, ex.RequestBody)
	}
	equal(t, "unused codes", got.RecoveryCodes, codes[1:])
	equal(t, "get member", got.Member, wantMem)
	equal(t, "get organization", got.Organization, wantOrg)
	if got.MemberID != memberID {
		t.Errorf("get member_id = %s", got.MemberID)
	}

	// A code works once.
	relogin, err := c.Passwords.Authenticate(ctx, client.AuthenticatePasswordParams{OrganizationID: orgID, EmailAddress: "ada@example.com", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	ist := relogin.IntermediateSessionToken
	_, err = c.RecoveryCodes.Recover(ctx, client.RecoverParams{OrganizationID: orgID, MemberID: memberID, RecoveryCode: codes[0], IntermediateSessionToken: ist})
	apiError(t, err, 401, "unable_to_authenticate_recovery_code")

	// Rotation replaces the set: the old codes stop working, the new ones work.
	rotated, err := c.RecoveryCodes.Rotate(ctx, client.RotateParams{OrganizationID: orgID, MemberID: memberID})
	if err != nil {
		t.Fatal(err)
	}
	sentJSON(t, rec, fmt.Sprintf(`{"organization_id":%q,"member_id":%q}`, orgID, memberID))
	sameJSON(t, rec, rotated)
	ok(t, rotated.RequestID, rotated.StatusCode)
	if rotated.MemberID != memberID || len(rotated.RecoveryCodes) != 10 {
		t.Fatalf("rotate: member_id %s, %d codes", rotated.MemberID, len(rotated.RecoveryCodes))
	}
	for _, code := range rotated.RecoveryCodes {
		match(t, "rotated code", codePattern, code)
		if slices.Contains(codes, code) {
			t.Errorf("rotate kept code %s", code)
		}
	}
	equal(t, "rotate member", rotated.Member, wantMem)
	equal(t, "rotate organization", rotated.Organization, wantOrg)
	for _, old := range codes[1:3] {
		_, err = c.RecoveryCodes.Recover(ctx, client.RecoverParams{OrganizationID: orgID, MemberID: memberID, RecoveryCode: old, IntermediateSessionToken: ist})
		apiError(t, err, 401, "unable_to_authenticate_recovery_code")
	}
	// Failed calls leave the intermediate session usable; a success resets the failure count.
	again, err := c.RecoveryCodes.Recover(ctx, client.RecoverParams{OrganizationID: orgID, MemberID: memberID, RecoveryCode: rotated.RecoveryCodes[4], IntermediateSessionToken: ist})
	if err != nil {
		t.Fatalf("recover with a rotated code: %v", err)
	}
	if again.RecoveryCodesRemaining != 9 {
		t.Errorf("recovery_codes_remaining = %d, want 9", again.RecoveryCodesRemaining)
	}

	// Ten wrong codes in a row lock the member; the tenth is answered 429.
	for i := 1; i <= 10; i++ {
		_, err = c.RecoveryCodes.Recover(ctx, client.RecoverParams{OrganizationID: orgID, MemberID: memberID, RecoveryCode: wrongCode(i), SessionToken: again.SessionToken})
		if i < 10 {
			apiError(t, err, 401, "unable_to_authenticate_recovery_code")
			continue
		}
		e := apiError(t, err, 429, "user_lock_limit_reached")
		if e.RetryAfter != time.Hour {
			t.Errorf("Retry-After = %s, want 1h", e.RetryAfter)
		}
	}
	// While locked even a good code is refused without being looked at, and GET shows the lock.
	_, err = c.RecoveryCodes.Recover(ctx, client.RecoverParams{OrganizationID: orgID, MemberID: memberID, RecoveryCode: rotated.RecoveryCodes[5], SessionToken: again.SessionToken})
	apiError(t, err, 429, "user_lock_limit_reached")
	locked, err := c.RecoveryCodes.Get(ctx, client.GetParams{OrganizationID: orgID, MemberID: memberID})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, rec, locked)
	lockExpiry := t2.Add(time.Hour)
	if !locked.Member.IsLocked || !reflect.DeepEqual(locked.Member.LockCreatedAt, &t2) || !reflect.DeepEqual(locked.Member.LockExpiresAt, &lockExpiry) {
		t.Errorf("locked member: is_locked %v created %v expires %v", locked.Member.IsLocked, locked.Member.LockCreatedAt, locked.Member.LockExpiresAt)
	}
	if len(locked.RecoveryCodes) != 9 || slices.Contains(locked.RecoveryCodes, rotated.RecoveryCodes[4]) {
		t.Errorf("codes while locked: %v", locked.RecoveryCodes)
	}
}

func codeIDOf(s client.MemberSession) string {
	for _, f := range s.AuthenticationFactors {
		if f.RecoveryCodeFactor != nil {
			return f.RecoveryCodeFactor.TOTPRecoveryCodeID
		}
	}
	return ""
}

// mfaMember is a member of a REQUIRED_FOR_ALL organization with a password and recovery codes,
// and an intermediate session from a password login.
type mfaMember struct {
	orgID, memberID, email, password, ist string
	codes                                 []string
	totpSecret                            string
}

func newMFAMember(t *testing.T, c *client.Client, name string) mfaMember {
	t.Helper()
	ctx := context.Background()
	org, err := c.Organizations.Create(ctx, client.CreateOrganizationParams{
		OrganizationName:   name,
		OrganizationFields: client.OrganizationFields{MFAPolicy: client.String("REQUIRED_FOR_ALL")},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := mfaMember{orgID: org.Organization.OrganizationID, email: "grace@example.com", password: "hunter2-but-longer"}
	hash, cfg := pbkdf2Hash(m.password)
	mig, err := c.Passwords.Migrate(ctx, client.MigratePasswordParams{
		OrganizationID: m.orgID, EmailAddress: m.email, Hash: hash, HashType: "pbkdf_2", PBKDF2Config: cfg,
		Name: client.String("Grace"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !mig.MemberCreated || mig.Member.Name != "Grace" {
		t.Fatalf("migrate of a new address: created %v name %q", mig.MemberCreated, mig.Member.Name)
	}
	m.memberID = mig.MemberID
	totp, err := c.TOTPs.Create(ctx, client.CreateTOTPParams{OrganizationID: m.orgID, MemberID: m.memberID})
	if err != nil {
		t.Fatal(err)
	}
	m.codes, m.totpSecret = totp.RecoveryCodes, totp.Secret
	m.ist = m.login(t, c)
	return m
}

func (m mfaMember) login(t *testing.T, c *client.Client) string {
	t.Helper()
	login, err := c.Passwords.Authenticate(context.Background(), client.AuthenticatePasswordParams{OrganizationID: m.orgID, EmailAddress: m.email, Password: m.password})
	if err != nil {
		t.Fatal(err)
	}
	if login.MemberAuthenticated || login.IntermediateSessionToken == "" {
		t.Fatalf("login did not ask for MFA: %+v", login)
	}
	return login.IntermediateSessionToken
}

// TestRecoverErrors checks the refusals of the life cycle, each as a *client.Error, and that none
// of them uses up the intermediate session.
func TestRecoverErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	sk := newSparekey(t, clock.Now)
	c, _ := newClient(t, sk, clock)
	m := newMFAMember(t, c, "Errors Inc")
	other := newMFAMember(t, c, "Other Inc")

	noTOTP, err := c.Members.Create(ctx, client.CreateMemberParams{OrganizationID: m.orgID, EmailAddress: "no-totp@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	wrongSecret, err := client.New(sk.URL, sk.ProjectID, sk.Secret+"x")
	if err != nil {
		t.Fatal(err)
	}
	const unknownMember = "member-test-00000000-0000-4000-8000-000000000000"
	recover := func(p client.RecoverParams) error {
		_, err := c.RecoveryCodes.Recover(ctx, p)
		return err
	}
	for _, tc := range []struct {
		name       string
		call       func() error
		wantStatus int
		wantType   string
	}{
		{"malformed code", func() error {
			return recover(client.RecoverParams{OrganizationID: m.orgID, MemberID: m.memberID, RecoveryCode: "abc-def", IntermediateSessionToken: m.ist})
		}, 400, "invalid_recovery_code"},
		{"TOTP code sent as a recovery code", func() error {
			return recover(client.RecoverParams{OrganizationID: m.orgID, MemberID: m.memberID, RecoveryCode: "123456", IntermediateSessionToken: m.ist})
		}, 400, "totp_code_used_as_recovery_code"},
		{"no session argument", func() error {
			return recover(client.RecoverParams{OrganizationID: m.orgID, MemberID: m.memberID, RecoveryCode: m.codes[0]})
		}, 400, "invalid_session_missing_primary_factor"},
		{"two session arguments", func() error {
			return recover(client.RecoverParams{OrganizationID: m.orgID, MemberID: m.memberID, RecoveryCode: m.codes[0], IntermediateSessionToken: m.ist, SessionToken: m.ist})
		}, 400, "too_many_session_arguments"},
		{"session duration out of range", func() error {
			return recover(client.RecoverParams{OrganizationID: m.orgID, MemberID: m.memberID, RecoveryCode: m.codes[0], IntermediateSessionToken: m.ist, SessionDurationMinutes: client.Int(0)})
		}, 400, "invalid_session_duration_minutes"},
		{"reserved custom claim", func() error {
			return recover(client.RecoverParams{OrganizationID: m.orgID, MemberID: m.memberID, RecoveryCode: m.codes[0], IntermediateSessionToken: m.ist, SessionCustomClaims: map[string]any{"sub": "x"}})
		}, 400, "reserved_claims_in_custom_claims"},
		{"unknown member", func() error {
			return recover(client.RecoverParams{OrganizationID: m.orgID, MemberID: unknownMember, RecoveryCode: m.codes[0], IntermediateSessionToken: m.ist})
		}, 404, "member_not_found"},
		{"unknown organization", func() error {
			return recover(client.RecoverParams{OrganizationID: "no-such-org", MemberID: m.memberID, RecoveryCode: m.codes[0], IntermediateSessionToken: m.ist})
		}, 404, "organization_not_found"},
		{"member of another organization", func() error {
			return recover(client.RecoverParams{OrganizationID: m.orgID, MemberID: other.memberID, RecoveryCode: m.codes[0], IntermediateSessionToken: m.ist})
		}, 404, "member_not_found"},
		{"intermediate session of another member", func() error {
			return recover(client.RecoverParams{OrganizationID: m.orgID, MemberID: m.memberID, RecoveryCode: m.codes[0], IntermediateSessionToken: other.ist})
		}, 400, "invalid_intermediate_session_token_for_organization"},
		{"unknown intermediate session", func() error {
			return recover(client.RecoverParams{OrganizationID: m.orgID, MemberID: m.memberID, RecoveryCode: m.codes[0], IntermediateSessionToken: strings.Repeat("A", 44)})
		}, 404, "intermediate_session_not_found"},
		{"member without TOTP: recover", func() error {
			return recover(client.RecoverParams{OrganizationID: m.orgID, MemberID: noTOTP.MemberID, RecoveryCode: m.codes[0], IntermediateSessionToken: m.ist})
		}, 400, "no_active_recovery_code_backed_factor"},
		{"member without TOTP: get", func() error {
			_, err := c.RecoveryCodes.Get(ctx, client.GetParams{OrganizationID: m.orgID, MemberID: noTOTP.MemberID})
			return err
		}, 400, "no_active_recovery_code_backed_factor"},
		{"member without TOTP: rotate", func() error {
			_, err := c.RecoveryCodes.Rotate(ctx, client.RotateParams{OrganizationID: m.orgID, MemberID: noTOTP.MemberID})
			return err
		}, 400, "no_active_recovery_code_backed_factor"},
		{"get: unknown member", func() error {
			_, err := c.RecoveryCodes.Get(ctx, client.GetParams{OrganizationID: m.orgID, MemberID: unknownMember})
			return err
		}, 404, "member_not_found"},
		{"rotate: missing member id", func() error {
			_, err := c.RecoveryCodes.Rotate(ctx, client.RotateParams{OrganizationID: m.orgID})
			return err
		}, 400, "bad_request"},
		{"wrong project secret", func() error {
			_, err := wrongSecret.RecoveryCodes.Get(ctx, client.GetParams{OrganizationID: m.orgID, MemberID: m.memberID})
			return err
		}, 401, "unauthorized_credentials"},
		{"wrong password", func() error {
			_, err := c.Passwords.Authenticate(ctx, client.AuthenticatePasswordParams{OrganizationID: m.orgID, EmailAddress: m.email, Password: "wrong"})
			return err
		}, 401, "unauthorized_credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			apiError(t, tc.call(), tc.wantStatus, tc.wantType)
		})
	}

	// None of those consumed the intermediate session or a code.
	res, err := c.RecoveryCodes.Recover(ctx, client.RecoverParams{OrganizationID: m.orgID, MemberID: m.memberID, RecoveryCode: " " + m.codes[0] + " ", IntermediateSessionToken: m.ist})
	if err != nil {
		t.Fatalf("recover after the refusals: %v", err)
	}
	if res.RecoveryCodesRemaining != 9 {
		t.Errorf("recovery_codes_remaining = %d, want 9", res.RecoveryCodesRemaining)
	}
	// Named by its JWT, the session gains the factor in place and no token comes back (§6.0.1).
	clock.Advance(time.Minute)
	byJWT, err := c.RecoveryCodes.Recover(ctx, client.RecoverParams{OrganizationID: m.orgID, MemberID: m.memberID, RecoveryCode: m.codes[1], SessionJWT: res.SessionJWT})
	if err != nil {
		t.Fatalf("recover by session JWT: %v", err)
	}
	s0, s1 := res.MemberSession, byJWT.MemberSession
	if byJWT.SessionToken != "" || byJWT.SessionJWT == "" || byJWT.RecoveryCodesRemaining != 8 || s1.MemberSessionID != s0.MemberSessionID ||
		!s1.ExpiresAt.Equal(s0.ExpiresAt) || len(s1.AuthenticationFactors) != 2 || codeIDOf(s1) == codeIDOf(s0) ||
		!s1.AuthenticationFactors[1].CreatedAt.Equal(s0.AuthenticationFactors[1].CreatedAt) || !s1.AuthenticationFactors[1].LastAuthenticatedAt.Equal(clock.Now()) {
		t.Errorf("recover by session JWT: token %q remaining %d\nbefore %+v\nafter  %+v", byJWT.SessionToken, byJWT.RecoveryCodesRemaining, s0, s1)
	}
	// A consumed intermediate session is gone.
	_, err = c.RecoveryCodes.Recover(ctx, client.RecoverParams{OrganizationID: m.orgID, MemberID: m.memberID, RecoveryCode: m.codes[1], IntermediateSessionToken: m.ist})
	apiError(t, err, 404, "intermediate_session_not_found")
	// A path parameter left empty is refused before any request.
	_, err = c.RecoveryCodes.Get(ctx, client.GetParams{OrganizationID: m.orgID})
	if !errors.Is(err, client.ErrMissingParameter) {
		t.Errorf("Get without member id: %v, want ErrMissingParameter", err)
	}
}

package storetest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/secret"
)

// newID makes an id of the contract's form, <kind>-test-<uuid v4>.
func newID(kind string) string { return kind + "-test-" + uuid.NewString() }

func newCodeID() string { return newID("member-totp-recovery-code") }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// digest stands for the SHA-256 of a token: stores only ever see digests.
func digest() []byte { return randomBytes(32) }

// short is a unique lowercase suffix for slugs and addresses.
func short() string { return strings.ReplaceAll(uuid.NewString(), "-", "")[:12] }

func (f *fixture) createProject(t *testing.T, createdAt time.Time) auth.Project {
	t.Helper()
	p := auth.Project{ID: newID("project"), SecretDigest: randomBytes(32), SealedPepper: randomBytes(61), CreatedAt: createdAt}
	must(t, f.store.CreateProject(f.ctx, p, newSigningKey(p.ID, createdAt)), "CreateProject")
	return p
}

// otherProject is a second project of the same store, for scoping checks.
func (f *fixture) otherProject(t *testing.T) auth.Project {
	t.Helper()
	return f.createProject(t, f.now.Add(-time.Hour))
}

func newSigningKey(projectID string, createdAt time.Time) auth.SigningKey {
	kid := newID("jwk")
	b64 := base64.RawURLEncoding.EncodeToString
	return auth.SigningKey{
		KID:              kid,
		ProjectID:        projectID,
		SealedPrivateKey: randomBytes(1219),
		JWK: secret.JWK{
			Alg:     "RS256",
			E:       "AQAB",
			KeyOps:  []string{"verify"},
			KID:     kid,
			Kty:     "RSA",
			N:       b64(randomBytes(256)),
			Use:     "sig",
			X5C:     []string{base64.StdEncoding.EncodeToString(randomBytes(700))},
			X5TS256: b64(randomBytes(32)),
		},
		CreatedAt: createdAt,
	}
}

// fullSettings sets every organization setting to a value that differs per tag, so a round
// trip that drops or mixes up any field shows.
func fullSettings(tag string) auth.OrganizationSettings {
	return auth.OrganizationSettings{
		LogoURL: "https://" + tag + ".example.com/logo.png",
		TrustedMetadata: map[string]any{
			"tag":    tag,
			"seats":  float64(25),
			"ratio":  0.5,
			"active": true,
			"none":   nil,
			"list":   []any{"a", float64(1), false, map[string]any{"deep": tag}},
			"nested": map[string]any{"k": "v", "inner": map[string]any{"n": float64(-3)}},
		},
		MFAPolicy:                            auth.MFAPolicyRequiredForAll,
		MFAMethods:                           auth.Restricted,
		AllowedMFAMethods:                    []string{"totp", "sms_otp"},
		AuthMethods:                          auth.Restricted,
		AllowedAuthMethods:                   []string{"password", "sso-" + tag},
		SSOJITProvisioning:                   auth.Restricted,
		SSOJITProvisioningAllowedConnections: []string{"sso-connection-test-" + tag},
		EmailInvites:                         auth.AllAllowed,
		EmailJITProvisioning:                 auth.NotAllowed,
		OAuthTenantJITProvisioning:           auth.Restricted,
		FirstPartyConnectedAppsAllowedType:   auth.AllAllowed,
		ThirdPartyConnectedAppsAllowedType:   auth.NotAllowed,
		AllowedFirstPartyConnectedApps:       []string{"connected-app-test-1" + tag},
		AllowedThirdPartyConnectedApps:       []string{"connected-app-test-3" + tag},
		EmailAllowedDomains:                  []string{tag + ".example.com", "other-" + tag + ".example.org"},
		ClaimedEmailDomains:                  []string{tag + ".example.com"},
		RBACEmailImplicitRoleAssignments:     []auth.RoleAssignment{{Domain: tag + ".example.com", RoleID: auth.RoleAdmin}, {Domain: "x.io", RoleID: "editor-" + tag}},
		AllowedOAuthTenants:                  map[string][]string{"slack": {"T" + tag}, "hubspot": {"1", tag}},
	}
}

// newOrganization is a minimal organization of the fixture's project; mods adjust it.
func (f *fixture) newOrganization(mods ...func(*auth.Organization)) auth.Organization {
	o := auth.Organization{
		ID:        newID("organization"),
		ProjectID: f.project.ID,
		Name:      "Organization " + short(),
		Slug:      "org-" + short(),
		OrganizationSettings: auth.OrganizationSettings{
			MFAPolicy:  auth.MFAPolicyOptional,
			MFAMethods: auth.AllAllowed,
		},
		CreatedAt: f.now.Add(-time.Hour),
		UpdatedAt: f.now.Add(-time.Hour),
	}
	for _, mod := range mods {
		mod(&o)
	}
	return o
}

func (f *fixture) createOrganization(t *testing.T, mods ...func(*auth.Organization)) auth.Organization {
	t.Helper()
	o := f.newOrganization(mods...)
	must(t, f.store.CreateOrganization(f.ctx, o), "CreateOrganization")
	return o
}

func inProject(p auth.Project) func(*auth.Organization) {
	return func(o *auth.Organization) { o.ProjectID = p.ID }
}

// fullProfile sets every profile field.
func fullProfile(tag string) auth.MemberProfile {
	return auth.MemberProfile{
		Name:              "Member " + tag,
		EmailVerified:     true,
		RetiredEmails:     []auth.RetiredEmail{{EmailID: newID("email"), EmailAddress: "old-" + tag + "@example.com"}},
		IsBreakglass:      true,
		Roles:             []string{auth.RoleAdmin, "editor-" + tag},
		MFAEnrolled:       true,
		MFAPhoneNumber:    "+15555550123",
		MFAPhoneVerified:  true,
		DefaultMFAMethod:  "totp",
		TrustedMetadata:   map[string]any{"tag": tag, "n": float64(7), "nested": map[string]any{"a": []any{"x", true}}},
		UntrustedMetadata: map[string]any{"theme": "dark-" + tag, "size": 1.25},
	}
}

// newMember is a minimal active member of o; mods adjust it.
func (f *fixture) newMember(o auth.Organization, mods ...func(*auth.Member)) auth.Member {
	m := auth.Member{
		ID:             newID("member"),
		OrganizationID: o.ID,
		ProjectID:      o.ProjectID,
		EmailAddress:   "m-" + short() + "@example.com",
		Status:         auth.StatusActive,
		CreatedAt:      f.now.Add(-time.Hour),
		UpdatedAt:      f.now.Add(-time.Hour),
	}
	for _, mod := range mods {
		mod(&m)
	}
	return m
}

func (f *fixture) createMember(t *testing.T, o auth.Organization, mods ...func(*auth.Member)) auth.Member {
	t.Helper()
	m := f.newMember(o, mods...)
	must(t, f.store.CreateMember(f.ctx, m, nil), "CreateMember")
	return m
}

func (f *fixture) newPassword(m auth.Member) auth.Password {
	return auth.Password{ID: newID("member-password"), MemberID: m.ID, Sealed: randomBytes(90), CreatedAt: f.now.Add(-time.Minute)}
}

// newCodes is a set of n unused codes in issue order.
func newCodes(n int) []auth.RecoveryCode {
	codes := make([]auth.RecoveryCode, n)
	for i := range codes {
		codes[i] = auth.RecoveryCode{ID: newCodeID(), Position: i, MAC: randomBytes(32)}
	}
	return codes
}

func (f *fixture) newTOTP(m auth.Member) auth.TOTPRegistration {
	return auth.TOTPRegistration{
		ID:           newID("member-totp"),
		MemberID:     m.ID,
		SealedSecret: randomBytes(60),
		SealedCodes:  randomBytes(150),
		LastStep:     0,
		CreatedAt:    f.now.Add(-time.Minute),
	}
}

// createTOTP registers an authenticator app with n recovery codes for m.
func (f *fixture) createTOTP(t *testing.T, m auth.Member, n int) (auth.TOTPRegistration, []auth.RecoveryCode) {
	t.Helper()
	reg, codes := f.newTOTP(m), newCodes(n)
	must(t, f.store.CreateTOTP(f.ctx, m.ProjectID, reg, codes), "CreateTOTP")
	return reg, codes
}

func passwordFactor(at time.Time) auth.Factor {
	return auth.Factor{Type: auth.FactorPassword, DeliveryMethod: auth.DeliveryKnowledge, CreatedAt: at, UpdatedAt: at, LastAuthenticatedAt: at}
}

func totpFactor(at time.Time, regID string) auth.Factor {
	return auth.Factor{Type: auth.FactorTOTP, DeliveryMethod: auth.DeliveryAuthApp, CreatedAt: at, UpdatedAt: at, LastAuthenticatedAt: at,
		AuthenticatorApp: &auth.AuthenticatorAppFactor{TOTPID: regID}}
}

func recoveryFactor(at time.Time, codeID string) auth.Factor {
	return auth.Factor{Type: auth.FactorRecoveryCodes, DeliveryMethod: auth.DeliveryRecovery, CreatedAt: at, UpdatedAt: at, LastAuthenticatedAt: at,
		RecoveryCode: &auth.RecoveryCodeFactor{TOTPRecoveryCodeID: codeID}}
}

// newSession is an hour-long session of m started at the fixture's now.
func (f *fixture) newSession(m auth.Member, mods ...func(*auth.Session)) auth.Session {
	s := auth.Session{
		ID:             newID("member-session"),
		ProjectID:      m.ProjectID,
		OrganizationID: m.OrganizationID,
		MemberID:       m.ID,
		TokenDigest:    digest(),
		StartedAt:      f.now,
		LastAccessedAt: f.now,
		ExpiresAt:      f.now.Add(time.Hour),
		Factors:        []auth.Factor{passwordFactor(f.now)},
		CustomClaims:   map[string]any{"plan": "pro"},
	}
	for _, mod := range mods {
		mod(&s)
	}
	return s
}

// createSession stores a session the only way the contract has: a Completion without proof.
func (f *fixture) createSession(t *testing.T, m auth.Member, mods ...func(*auth.Session)) auth.Session {
	t.Helper()
	s := f.newSession(m, mods...)
	done, err := f.store.Complete(f.ctx, auth.Completion{ProjectID: m.ProjectID, MemberID: m.ID, Now: f.now, NewSession: s})
	must(t, err, "Complete (create session)")
	return done.Session
}

// newIST is a ten-minute intermediate session of m after a password.
func (f *fixture) newIST(m auth.Member, mods ...func(*auth.IntermediateSession)) auth.IntermediateSession {
	ist := auth.IntermediateSession{
		TokenDigest:    digest(),
		ProjectID:      m.ProjectID,
		OrganizationID: m.OrganizationID,
		MemberID:       m.ID,
		Factors:        []auth.Factor{passwordFactor(f.now)},
		CreatedAt:      f.now,
		ExpiresAt:      f.now.Add(10 * time.Minute),
	}
	for _, mod := range mods {
		mod(&ist)
	}
	return ist
}

func (f *fixture) createIST(t *testing.T, m auth.Member, mods ...func(*auth.IntermediateSession)) auth.IntermediateSession {
	t.Helper()
	ist := f.newIST(m, mods...)
	must(t, f.store.CreateIntermediateSession(f.ctx, ist), "CreateIntermediateSession")
	return ist
}

// reread returns the member as the store has it now.
func (f *fixture) reread(t *testing.T, m auth.Member) auth.Member {
	t.Helper()
	got, err := f.store.Member(f.ctx, m.ProjectID, "", m.ID)
	must(t, err, "Member "+m.ID)
	return got
}

// codesOf returns the registration's codes as the store has them now.
func (f *fixture) codesOf(t *testing.T, reg auth.TOTPRegistration) []auth.RecoveryCode {
	t.Helper()
	_, codes, err := f.store.RecoveryCodes(f.ctx, f.project.ID, reg.ID)
	must(t, err, "RecoveryCodes")
	return codes
}

// sessionIDs lists the member's live sessions at the fixture's now.
func (f *fixture) sessionIDs(t *testing.T, m auth.Member) []string {
	t.Helper()
	ss, err := f.store.Sessions(f.ctx, m.ProjectID, m.ID, f.now)
	must(t, err, "Sessions")
	ids := make([]string, len(ss))
	for i, s := range ss {
		ids[i] = s.ID
	}
	return ids
}

// usedCodes lists the ids of the spent codes.
func usedCodes(codes []auth.RecoveryCode) []string {
	var out []string
	for _, c := range codes {
		if !c.UsedAt.IsZero() {
			out = append(out, c.ID)
		}
	}
	return out
}

func describe(errs []error) string {
	counts := map[string]int{}
	for _, err := range errs {
		counts[fmt.Sprint(err)]++
	}
	return fmt.Sprint(counts)
}

// updateMember is UpdateMember with an apply that records no event.
func (f *fixture) updateMember(ctx context.Context, projectID, memberID string, apply func(*auth.Member) error) (auth.Member, error) {
	return f.store.UpdateMember(ctx, projectID, memberID, func(m *auth.Member) ([]auth.Event, error) { return nil, apply(m) })
}

// deleteTOTP is DeleteTOTP with an apply that records no event.
func (f *fixture) deleteTOTP(ctx context.Context, projectID, memberID string, apply func(*auth.Member) error) (auth.Member, error) {
	return f.store.DeleteTOTP(ctx, projectID, memberID, func(m *auth.Member) ([]auth.Event, error) { return nil, apply(m) })
}

// recordFailedAttempt counts a failed MFA attempt the way the domain does: UpdateMember with an
// apply that calls Member.RecordFailure.
func (f *fixture) recordFailedAttempt(ctx context.Context, projectID, memberID string, now time.Time, p auth.LockPolicy) (auth.Member, error) {
	return f.store.UpdateMember(ctx, projectID, memberID, func(m *auth.Member) ([]auth.Event, error) {
		m.RecordFailure(now, p)
		return nil, nil
	})
}

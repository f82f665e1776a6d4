package auth

import (
	"time"

	"github.com/sparekey/sparekey/internal/secret"
)

// Project is a tenant: every organization, member and session belongs to exactly one.
type Project struct {
	ID           string
	SecretDigest []byte // SHA-256 of the secret; the secret itself is shown once, at creation
	SealedPepper []byte // the recovery-code HMAC key, sealed under the master keyring
	CreatedAt    time.Time
}

// SigningKey is one of a project's session-JWT keys. A key is published in the JWKS and
// verifies from its creation until it retires; it signs from ActivatesAt, until a newer key
// activates (§7: a new key is published before it signs, a replaced key stays until the JWTs it
// signed have expired).
type SigningKey struct {
	KID              string
	ProjectID        string
	SealedPrivateKey []byte // PKCS #8 DER, sealed under the master keyring
	JWK              secret.JWK
	CreatedAt        time.Time
	// ActivatesAt is when the key may start signing: its creation plus a publish delay of at
	// least the replicas' key cache TTL, so every replica lists it before any signs with it.
	// Zero means from its creation.
	ActivatesAt time.Time
	// RetiresAt is when a replaced key stops verifying and leaves the JWKS: the replacing key's
	// ActivatesAt plus a grace that outlasts the JWTs this key signed. Zero while not replaced.
	RetiresAt time.Time
}

// Organization is a B2B customer of the project. Settings hold the many policy fields the API
// stores and returns; only a few of them (mfa_policy, mfa_methods) change behaviour.
type Organization struct {
	ID         string
	ProjectID  string
	Name       string
	Slug       string
	ExternalID string // "" when none
	OrganizationSettings
	CreatedAt time.Time
	UpdatedAt time.Time
}

// OrganizationSettings is stored as one JSON document; the tags are its stable storage names.
// TrustedMetadata, of any shape and depth, is stored apart from it (organizations.trusted_metadata)
// so that search, which reads the document's domain lists, never has to parse it.
type OrganizationSettings struct {
	LogoURL                              string              `json:"logo_url"`
	TrustedMetadata                      map[string]any      `json:"-"`
	MFAPolicy                            string              `json:"mfa_policy"`
	MFAMethods                           string              `json:"mfa_methods"`
	AllowedMFAMethods                    []string            `json:"allowed_mfa_methods"`
	AuthMethods                          string              `json:"auth_methods"`
	AllowedAuthMethods                   []string            `json:"allowed_auth_methods"`
	SSOJITProvisioning                   string              `json:"sso_jit_provisioning"`
	SSOJITProvisioningAllowedConnections []string            `json:"sso_jit_provisioning_allowed_connections"`
	EmailInvites                         string              `json:"email_invites"`
	EmailJITProvisioning                 string              `json:"email_jit_provisioning"`
	OAuthTenantJITProvisioning           string              `json:"oauth_tenant_jit_provisioning"`
	FirstPartyConnectedAppsAllowedType   string              `json:"first_party_connected_apps_allowed_type"`
	ThirdPartyConnectedAppsAllowedType   string              `json:"third_party_connected_apps_allowed_type"`
	AllowedFirstPartyConnectedApps       []string            `json:"allowed_first_party_connected_apps"`
	AllowedThirdPartyConnectedApps       []string            `json:"allowed_third_party_connected_apps"`
	EmailAllowedDomains                  []string            `json:"email_allowed_domains"`
	ClaimedEmailDomains                  []string            `json:"claimed_email_domains"`
	RBACEmailImplicitRoleAssignments     []RoleAssignment    `json:"rbac_email_implicit_role_assignments"`
	AllowedOAuthTenants                  map[string][]string `json:"allowed_oauth_tenants"`
}

// RoleAssignment grants a role to members whose email is in a domain (stored, not enforced).
type RoleAssignment struct {
	Domain string `json:"domain"`
	RoleID string `json:"role_id"`
}

// MFA policies and method restrictions that change behaviour.
const (
	MFAPolicyOptional       = "OPTIONAL"
	MFAPolicyRequiredForAll = "REQUIRED_FOR_ALL"
	AllAllowed              = "ALL_ALLOWED"
	Restricted              = "RESTRICTED"
	NotAllowed              = "NOT_ALLOWED"
)

// Roles sparekey knows. stytch_member is every member's implicit first role; stytch_admin is
// the only permission grant (every action on every resource).
const (
	RoleMember = "stytch_member"
	RoleAdmin  = "stytch_admin"
)

// Member statuses sparekey emits.
const (
	StatusActive  = "active"
	StatusPending = "pending"
)

// Member is a person in one organization. The lock fields are the attempt limiter's state.
type Member struct {
	ID             string
	OrganizationID string
	ProjectID      string
	EmailAddress   string // lowercase
	ExternalID     string // "" when none
	Status         string
	MemberProfile
	// TOTPRegistrationID and PasswordID are read from the member's registration and password;
	// they are not stored on the member.
	TOTPRegistrationID string
	PasswordID         string
	FailedAttempts     int
	LockCreatedAt      time.Time // zero when not locked
	LockExpiresAt      time.Time // zero when not locked
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// MemberProfile is stored as one JSON document; empty values are left out to keep a member small.
type MemberProfile struct {
	Name              string         `json:"name,omitempty"`
	EmailVerified     bool           `json:"email_verified,omitempty"`
	RetiredEmails     []RetiredEmail `json:"retired_emails,omitempty"`
	IsBreakglass      bool           `json:"is_breakglass,omitempty"`
	Roles             []string       `json:"roles,omitempty"` // explicit roles; stytch_member is implied
	MFAEnrolled       bool           `json:"mfa_enrolled,omitempty"`
	MFAPhoneNumber    string         `json:"mfa_phone_number,omitempty"`
	MFAPhoneVerified  bool           `json:"mfa_phone_verified,omitempty"`
	DefaultMFAMethod  string         `json:"default_mfa_method,omitempty"`
	TrustedMetadata   map[string]any `json:"trusted_metadata,omitempty"`
	UntrustedMetadata map[string]any `json:"untrusted_metadata,omitempty"`
}

// RetiredEmail is an address a member used before.
type RetiredEmail struct {
	EmailID      string `json:"email_id"`
	EmailAddress string `json:"email_address"`
}

// RoleIDs returns the member's roles in the order the API shows them: stytch_member first.
func (m *Member) RoleIDs() []string {
	ids := []string{RoleMember}
	for _, r := range m.Roles {
		if r != RoleMember {
			ids = append(ids, r)
		}
	}
	return ids
}

// IsAdmin reports whether the member holds stytch_admin.
func (m *Member) IsAdmin() bool {
	for _, r := range m.Roles {
		if r == RoleAdmin {
			return true
		}
	}
	return false
}

// LockPolicy is the failed-attempt limiter's configuration.
type LockPolicy struct {
	Threshold int           // consecutive counted failures that lock the member
	Duration  time.Duration // how long a lock lasts
}

// Locked reports whether the member is locked at now. A lock lapses on its own at LockExpiresAt.
func (m *Member) Locked(now time.Time) bool {
	return !m.LockExpiresAt.IsZero() && now.Before(m.LockExpiresAt)
}

// settleLock applies a lapsed lock's end: unlocked, timestamps cleared, counter back to 0. Every
// read applies it, so a lock needs no background job to end.
func (m *Member) settleLock(now time.Time) {
	if !m.LockExpiresAt.IsZero() && !now.Before(m.LockExpiresAt) {
		m.LockCreatedAt, m.LockExpiresAt, m.FailedAttempts = time.Time{}, time.Time{}, 0
	}
}

// LockError returns the lock refusal when the member is locked at now, else nil.
func (m *Member) LockError(now time.Time) error {
	if m.Locked(now) {
		return locked(now, m.LockExpiresAt)
	}
	return nil
}

// RecordFailure counts one failed MFA attempt at now and locks the member when it reaches the
// threshold. It reports whether this failure set the lock. A locked member's attempts are not
// counted (they are refused before the code is looked at).
func (m *Member) RecordFailure(now time.Time, p LockPolicy) (lockedNow bool) {
	m.settleLock(now)
	if m.Locked(now) {
		return false
	}
	m.FailedAttempts++
	if m.FailedAttempts >= p.Threshold {
		m.LockCreatedAt, m.LockExpiresAt = now, now.Add(p.Duration)
		return true
	}
	return false
}

// Factor is one authentication factor of a session or intermediate session. Its JSON form is
// the Stytch AuthenticationFactor itself, so the stored factors, the API response and the JWT
// claim are one encoding (times are whole UTC seconds, so they print as 2026-03-01T09:30:00Z).
type Factor struct {
	Type                string                  `json:"type"`
	DeliveryMethod      string                  `json:"delivery_method"`
	CreatedAt           time.Time               `json:"created_at"`
	UpdatedAt           time.Time               `json:"updated_at"`
	LastAuthenticatedAt time.Time               `json:"last_authenticated_at"`
	AuthenticatorApp    *AuthenticatorAppFactor `json:"authenticator_app_factor,omitempty"`
	RecoveryCode        *RecoveryCodeFactor     `json:"recovery_code_factor,omitempty"`
}

// AuthenticatorAppFactor names the TOTP registration a totp factor used.
type AuthenticatorAppFactor struct {
	TOTPID string `json:"totp_id"`
}

// RecoveryCodeFactor names the recovery code a recovery_codes factor consumed.
type RecoveryCodeFactor struct {
	TOTPRecoveryCodeID string `json:"totp_recovery_code_id"`
}

// Factor types and delivery methods sparekey issues.
const (
	FactorPassword      = "password"
	FactorTOTP          = "totp"
	FactorRecoveryCodes = "recovery_codes"
	DeliveryKnowledge   = "knowledge"
	DeliveryAuthApp     = "authenticator_app"
	DeliveryRecovery    = "recovery_code"
)

// addFactor adds f to factors: a factor of the same type and delivery method is renewed in place
// (keeping its created_at and position), any other is appended, so factors stay in the order gained.
func addFactor(factors []Factor, f Factor) []Factor {
	for i, old := range factors {
		if old.Type == f.Type && old.DeliveryMethod == f.DeliveryMethod {
			f.CreatedAt = old.CreatedAt
			out := append([]Factor(nil), factors...)
			out[i] = f
			return out
		}
	}
	return append(append([]Factor(nil), factors...), f)
}

// Session is a member's authenticated session. Only the digest of its token is stored.
type Session struct {
	ID             string
	ProjectID      string
	OrganizationID string
	MemberID       string
	TokenDigest    []byte
	StartedAt      time.Time
	LastAccessedAt time.Time
	ExpiresAt      time.Time
	Factors        []Factor
	CustomClaims   map[string]any
}

// Live reports whether the session can still be used at now.
func (s *Session) Live(now time.Time) bool { return now.Before(s.ExpiresAt) }

// IntermediateSession proves a primary factor while MFA is pending. Single use, 10 minutes.
type IntermediateSession struct {
	TokenDigest    []byte
	ProjectID      string
	OrganizationID string
	MemberID       string
	Factors        []Factor
	CreatedAt      time.Time
	ExpiresAt      time.Time
}

// TOTPRegistration is a member's authenticator app, with the recovery codes that back it.
type TOTPRegistration struct {
	ID       string
	MemberID string
	// SealedSecret is the TOTP secret sealed under the keyring.
	SealedSecret []byte
	// SealedCodes is the recovery-code set in display form, sealed, so GET can show it; nil under
	// the strict storage policy.
	SealedCodes []byte
	// LastStep and UnspentSteps are the TOTP time steps accepted so far, each at most once, as
	// totp.Spent keeps them (see SpentSteps): every step up to LastStep, except those among the
	// 64 below it whose bit is set in UnspentSteps.
	LastStep     int64
	UnspentSteps uint64
	CreatedAt    time.Time
}

// RecoveryCode is one code of a registration's set as stored: its verification MAC and state,
// never the code itself.
type RecoveryCode struct {
	ID       string
	Position int // index in the issued set, so GET keeps issue order
	MAC      []byte
	UsedAt   time.Time // zero while unused
}

// Password is a member's imported password hash, sealed as a whole under the keyring.
type Password struct {
	ID        string
	MemberID  string
	Sealed    []byte
	CreatedAt time.Time
}

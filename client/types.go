package client

import "time"

// Organization is a B2B customer of the project (CONTRACT.md §5.1). Every field is always
// present in the API's answers.
type Organization struct {
	OrganizationID                       string                            `json:"organization_id"`
	OrganizationName                     string                            `json:"organization_name"`
	OrganizationSlug                     string                            `json:"organization_slug"`
	OrganizationLogoURL                  string                            `json:"organization_logo_url"`
	OrganizationExternalID               string                            `json:"organization_external_id"`
	TrustedMetadata                      map[string]any                    `json:"trusted_metadata"`
	MFAPolicy                            string                            `json:"mfa_policy"`  // OPTIONAL or REQUIRED_FOR_ALL
	MFAMethods                           string                            `json:"mfa_methods"` // ALL_ALLOWED or RESTRICTED
	AllowedMFAMethods                    []string                          `json:"allowed_mfa_methods"`
	AuthMethods                          string                            `json:"auth_methods"`
	AllowedAuthMethods                   []string                          `json:"allowed_auth_methods"`
	SSOJITProvisioning                   string                            `json:"sso_jit_provisioning"`
	SSOJITProvisioningAllowedConnections []string                          `json:"sso_jit_provisioning_allowed_connections"`
	EmailInvites                         string                            `json:"email_invites"`
	EmailJITProvisioning                 string                            `json:"email_jit_provisioning"`
	OAuthTenantJITProvisioning           string                            `json:"oauth_tenant_jit_provisioning"`
	FirstPartyConnectedAppsAllowedType   string                            `json:"first_party_connected_apps_allowed_type"`
	ThirdPartyConnectedAppsAllowedType   string                            `json:"third_party_connected_apps_allowed_type"`
	AllowedFirstPartyConnectedApps       []string                          `json:"allowed_first_party_connected_apps"`
	AllowedThirdPartyConnectedApps       []string                          `json:"allowed_third_party_connected_apps"`
	EmailAllowedDomains                  []string                          `json:"email_allowed_domains"`
	ClaimedEmailDomains                  []string                          `json:"claimed_email_domains"`
	RBACEmailImplicitRoleAssignments     []RBACEmailImplicitRoleAssignment `json:"rbac_email_implicit_role_assignments"`
	AllowedOAuthTenants                  map[string][]string               `json:"allowed_oauth_tenants"` // keys slack, hubspot, github
	SSOActiveConnections                 []SSOActiveConnection             `json:"sso_active_connections"`
	CustomRoles                          []CustomRole                      `json:"custom_roles"`
	SSODefaultConnectionID               *string                           `json:"sso_default_connection_id"`
	// SCIMActiveConnection is nil when the organization has none, which on sparekey is always.
	SCIMActiveConnection map[string]any `json:"scim_active_connection"`
	CreatedAt            time.Time      `json:"created_at"`
	UpdatedAt            time.Time      `json:"updated_at"`
}

// RBACEmailImplicitRoleAssignment grants a role to members whose email is in a domain.
type RBACEmailImplicitRoleAssignment struct {
	Domain string `json:"domain"`
	RoleID string `json:"role_id"`
}

// SSOActiveConnection is an SSO connection of an organization (sparekey has none).
type SSOActiveConnection struct {
	ConnectionID     string `json:"connection_id"`
	DisplayName      string `json:"display_name"`
	IdentityProvider string `json:"identity_provider"`
}

// CustomRole is a project-defined role (sparekey has none).
type CustomRole struct {
	RoleID      string       `json:"role_id"`
	Description string       `json:"description"`
	Permissions []Permission `json:"permissions"`
}

// Permission is the actions a role may take on one resource.
type Permission struct {
	ResourceID string   `json:"resource_id"`
	Actions    []string `json:"actions"`
}

// Member is a person in one organization (CONTRACT.md §5.2).
type Member struct {
	OrganizationID         string                `json:"organization_id"`
	MemberID               string                `json:"member_id"`
	EmailAddress           string                `json:"email_address"`
	Status                 string                `json:"status"` // active or pending
	Name                   string                `json:"name"`
	ExternalID             string                `json:"external_id"`
	EmailAddressVerified   bool                  `json:"email_address_verified"`
	MFAPhoneNumberVerified bool                  `json:"mfa_phone_number_verified"`
	RetiredEmailAddresses  []RetiredEmailAddress `json:"retired_email_addresses"`
	IsBreakglass           bool                  `json:"is_breakglass"`
	IsAdmin                bool                  `json:"is_admin"`
	Roles                  []MemberRole          `json:"roles"`
	MFAEnrolled            bool                  `json:"mfa_enrolled"`
	MFAPhoneNumber         string                `json:"mfa_phone_number"`
	DefaultMFAMethod       string                `json:"default_mfa_method"` // "", totp or sms_otp
	TOTPRegistrationID     string                `json:"totp_registration_id"`
	MemberPasswordID       string                `json:"member_password_id"`
	IsLocked               bool                  `json:"is_locked"`
	LockCreatedAt          *time.Time            `json:"lock_created_at"` // nil unless locked
	LockExpiresAt          *time.Time            `json:"lock_expires_at"` // nil unless locked
	// SSORegistrations and OAuthRegistrations are always empty on sparekey.
	SSORegistrations   []map[string]any `json:"sso_registrations"`
	OAuthRegistrations []map[string]any `json:"oauth_registrations"`
	// SCIMRegistration is nil when the member has none, which on sparekey is always.
	SCIMRegistration  map[string]any `json:"scim_registration"`
	TrustedMetadata   map[string]any `json:"trusted_metadata"`
	UntrustedMetadata map[string]any `json:"untrusted_metadata"`
	CreatedAt         time.Time      `json:"created_at"`
	UpdatedAt         time.Time      `json:"updated_at"`
}

// RetiredEmailAddress is an address a member used before.
type RetiredEmailAddress struct {
	EmailID      string `json:"email_id"`
	EmailAddress string `json:"email_address"`
}

// MemberRole is one role of a member and why the member holds it.
type MemberRole struct {
	RoleID  string             `json:"role_id"`
	Sources []MemberRoleSource `json:"sources"`
}

// MemberRoleSource is one reason a member holds a role; sparekey emits direct_assignment only.
type MemberRoleSource struct {
	Type    string         `json:"type"`
	Details map[string]any `json:"details"`
}

// MemberSession is a member's authenticated session (CONTRACT.md §5.3).
type MemberSession struct {
	MemberSessionID       string                 `json:"member_session_id"`
	MemberID              string                 `json:"member_id"`
	OrganizationID        string                 `json:"organization_id"`
	OrganizationSlug      string                 `json:"organization_slug"`
	StartedAt             time.Time              `json:"started_at"`
	LastAccessedAt        time.Time              `json:"last_accessed_at"`
	ExpiresAt             time.Time              `json:"expires_at"`
	AuthenticationFactors []AuthenticationFactor `json:"authentication_factors"`
	Roles                 []string               `json:"roles"`
	CustomClaims          map[string]any         `json:"custom_claims"`
}

// AuthenticationFactor is one factor a session holds (CONTRACT.md §5.4).
type AuthenticationFactor struct {
	Type                   string                  `json:"type"`            // password, totp, recovery_codes, ...
	DeliveryMethod         string                  `json:"delivery_method"` // knowledge, authenticator_app, recovery_code, ...
	CreatedAt              time.Time               `json:"created_at"`
	UpdatedAt              time.Time               `json:"updated_at"`
	LastAuthenticatedAt    time.Time               `json:"last_authenticated_at"`
	AuthenticatorAppFactor *AuthenticatorAppFactor `json:"authenticator_app_factor,omitempty"` // totp factors only
	RecoveryCodeFactor     *RecoveryCodeFactor     `json:"recovery_code_factor,omitempty"`     // recovery_codes factors only
}

// AuthenticatorAppFactor names the TOTP registration a totp factor used.
type AuthenticatorAppFactor struct {
	TOTPID string `json:"totp_id"`
}

// RecoveryCodeFactor names the recovery code a recovery_codes factor consumed.
type RecoveryCodeFactor struct {
	TOTPRecoveryCodeID string `json:"totp_recovery_code_id"`
}

// MFARequired says which second factor a member can complete a login with (CONTRACT.md §5.5).
type MFARequired struct {
	MemberOptions MemberOptions `json:"member_options"`
	// SecondaryAuthInitiated is nil on sparekey, which sends no SMS.
	SecondaryAuthInitiated *string `json:"secondary_auth_initiated"`
}

// MemberOptions lists the member's MFA methods; the phone number is masked.
type MemberOptions struct {
	MFAPhoneNumber     string `json:"mfa_phone_number"`
	TOTPRegistrationID string `json:"totp_registration_id"`
}

// PrimaryRequired is set when the organization wants another primary factor (never on sparekey).
type PrimaryRequired struct {
	AllowedAuthMethods []string `json:"allowed_auth_methods"`
}

// Verdict answers a sessions-authenticate authorization check.
type Verdict struct {
	Authorized    bool     `json:"authorized"`
	GrantingRoles []string `json:"granting_roles"`
}

// JWK is one public key of the project's JWKS (CONTRACT.md §5.6).
type JWK struct {
	Alg     string   `json:"alg"`
	E       string   `json:"e"`
	KeyOps  []string `json:"key_ops"`
	KID     string   `json:"kid"`
	Kty     string   `json:"kty"`
	N       string   `json:"n"`
	Use     string   `json:"use"`
	X5C     []string `json:"x5c"`
	X5TS256 string   `json:"x5tS256"`
}

// ResultsMetadata is the paging state of an organization search.
type ResultsMetadata struct {
	Total      int     `json:"total"`
	NextCursor *string `json:"next_cursor"` // nil on the last page
}

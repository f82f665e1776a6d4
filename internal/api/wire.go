package api

import (
	"time"

	"github.com/sparekey/sparekey/internal/auth"
)

// timestamp prints RFC 3339 in UTC with whole seconds, or null for the zero time: a "" would
// make the Go SDK reject the whole response (§3 rule 3).
type timestamp time.Time

func (t timestamp) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + tt.UTC().Format(time.RFC3339) + `"`), nil
}

// list returns a non-nil slice: required arrays are [] rather than null (§3 rule 1).
func list[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

func object[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

type organizationJSON struct {
	OrganizationID                       string                `json:"organization_id"`
	OrganizationName                     string                `json:"organization_name"`
	OrganizationSlug                     string                `json:"organization_slug"`
	OrganizationLogoURL                  string                `json:"organization_logo_url"`
	OrganizationExternalID               string                `json:"organization_external_id"`
	TrustedMetadata                      map[string]any        `json:"trusted_metadata"`
	MFAPolicy                            string                `json:"mfa_policy"`
	MFAMethods                           string                `json:"mfa_methods"`
	AllowedMFAMethods                    []string              `json:"allowed_mfa_methods"`
	AuthMethods                          string                `json:"auth_methods"`
	AllowedAuthMethods                   []string              `json:"allowed_auth_methods"`
	SSOJITProvisioning                   string                `json:"sso_jit_provisioning"`
	SSOJITProvisioningAllowedConnections []string              `json:"sso_jit_provisioning_allowed_connections"`
	EmailInvites                         string                `json:"email_invites"`
	EmailJITProvisioning                 string                `json:"email_jit_provisioning"`
	OAuthTenantJITProvisioning           string                `json:"oauth_tenant_jit_provisioning"`
	FirstPartyConnectedAppsAllowedType   string                `json:"first_party_connected_apps_allowed_type"`
	ThirdPartyConnectedAppsAllowedType   string                `json:"third_party_connected_apps_allowed_type"`
	AllowedFirstPartyConnectedApps       []string              `json:"allowed_first_party_connected_apps"`
	AllowedThirdPartyConnectedApps       []string              `json:"allowed_third_party_connected_apps"`
	EmailAllowedDomains                  []string              `json:"email_allowed_domains"`
	ClaimedEmailDomains                  []string              `json:"claimed_email_domains"`
	RBACEmailImplicitRoleAssignments     []auth.RoleAssignment `json:"rbac_email_implicit_role_assignments"`
	AllowedOAuthTenants                  map[string][]string   `json:"allowed_oauth_tenants"`
	SSOActiveConnections                 []struct{}            `json:"sso_active_connections"`
	CustomRoles                          []struct{}            `json:"custom_roles"`
	SSODefaultConnectionID               *string               `json:"sso_default_connection_id"`
	SCIMActiveConnection                 *struct{}             `json:"scim_active_connection"`
	CreatedAt                            timestamp             `json:"created_at"`
	UpdatedAt                            timestamp             `json:"updated_at"`
}

func organizationOut(o *auth.Organization) organizationJSON {
	return organizationJSON{
		OrganizationID:                       o.ID,
		OrganizationName:                     o.Name,
		OrganizationSlug:                     o.Slug,
		OrganizationLogoURL:                  o.LogoURL,
		OrganizationExternalID:               o.ExternalID,
		TrustedMetadata:                      object(o.TrustedMetadata),
		MFAPolicy:                            o.MFAPolicy,
		MFAMethods:                           o.MFAMethods,
		AllowedMFAMethods:                    list(o.AllowedMFAMethods),
		AuthMethods:                          o.AuthMethods,
		AllowedAuthMethods:                   list(o.AllowedAuthMethods),
		SSOJITProvisioning:                   o.SSOJITProvisioning,
		SSOJITProvisioningAllowedConnections: list(o.SSOJITProvisioningAllowedConnections),
		EmailInvites:                         o.EmailInvites,
		EmailJITProvisioning:                 o.EmailJITProvisioning,
		OAuthTenantJITProvisioning:           o.OAuthTenantJITProvisioning,
		FirstPartyConnectedAppsAllowedType:   o.FirstPartyConnectedAppsAllowedType,
		ThirdPartyConnectedAppsAllowedType:   o.ThirdPartyConnectedAppsAllowedType,
		AllowedFirstPartyConnectedApps:       list(o.AllowedFirstPartyConnectedApps),
		AllowedThirdPartyConnectedApps:       list(o.AllowedThirdPartyConnectedApps),
		EmailAllowedDomains:                  list(o.EmailAllowedDomains),
		ClaimedEmailDomains:                  list(o.ClaimedEmailDomains),
		RBACEmailImplicitRoleAssignments:     list(o.RBACEmailImplicitRoleAssignments),
		AllowedOAuthTenants:                  object(o.AllowedOAuthTenants),
		SSOActiveConnections:                 []struct{}{},
		CustomRoles:                          []struct{}{},
		CreatedAt:                            timestamp(o.CreatedAt),
		UpdatedAt:                            timestamp(o.UpdatedAt),
	}
}

type roleSourceJSON struct {
	Type    string         `json:"type"`
	Details map[string]any `json:"details"`
}

type memberRoleJSON struct {
	RoleID  string           `json:"role_id"`
	Sources []roleSourceJSON `json:"sources"`
}

type memberJSON struct {
	OrganizationID         string              `json:"organization_id"`
	MemberID               string              `json:"member_id"`
	EmailAddress           string              `json:"email_address"`
	Status                 string              `json:"status"`
	Name                   string              `json:"name"`
	ExternalID             string              `json:"external_id"`
	EmailAddressVerified   bool                `json:"email_address_verified"`
	MFAPhoneNumberVerified bool                `json:"mfa_phone_number_verified"`
	RetiredEmailAddresses  []auth.RetiredEmail `json:"retired_email_addresses"`
	IsBreakglass           bool                `json:"is_breakglass"`
	IsAdmin                bool                `json:"is_admin"`
	Roles                  []memberRoleJSON    `json:"roles"`
	MFAEnrolled            bool                `json:"mfa_enrolled"`
	MFAPhoneNumber         string              `json:"mfa_phone_number"`
	DefaultMFAMethod       string              `json:"default_mfa_method"`
	TOTPRegistrationID     string              `json:"totp_registration_id"`
	MemberPasswordID       string              `json:"member_password_id"`
	IsLocked               bool                `json:"is_locked"`
	LockCreatedAt          timestamp           `json:"lock_created_at"`
	LockExpiresAt          timestamp           `json:"lock_expires_at"`
	SSORegistrations       []struct{}          `json:"sso_registrations"`
	OAuthRegistrations     []struct{}          `json:"oauth_registrations"`
	SCIMRegistration       *struct{}           `json:"scim_registration"`
	TrustedMetadata        map[string]any      `json:"trusted_metadata"`
	UntrustedMetadata      map[string]any      `json:"untrusted_metadata"`
	CreatedAt              timestamp           `json:"created_at"`
	UpdatedAt              timestamp           `json:"updated_at"`
}

// memberOut renders a member whose lapsed lock the domain has already settled.
func memberOut(m *auth.Member) memberJSON {
	roles := make([]memberRoleJSON, 0, 2)
	for _, id := range m.RoleIDs() {
		roles = append(roles, memberRoleJSON{RoleID: id, Sources: []roleSourceJSON{{Type: "direct_assignment", Details: map[string]any{}}}})
	}
	return memberJSON{
		OrganizationID:         m.OrganizationID,
		MemberID:               m.ID,
		EmailAddress:           m.EmailAddress,
		Status:                 m.Status,
		Name:                   m.Name,
		ExternalID:             m.ExternalID,
		EmailAddressVerified:   m.EmailVerified,
		MFAPhoneNumberVerified: m.MFAPhoneVerified,
		RetiredEmailAddresses:  list(m.RetiredEmails),
		IsBreakglass:           m.IsBreakglass,
		IsAdmin:                m.IsAdmin(),
		Roles:                  roles,
		MFAEnrolled:            m.MFAEnrolled,
		MFAPhoneNumber:         m.MFAPhoneNumber,
		DefaultMFAMethod:       m.DefaultMFAMethod,
		TOTPRegistrationID:     m.TOTPRegistrationID,
		MemberPasswordID:       m.PasswordID,
		IsLocked:               !m.LockExpiresAt.IsZero(),
		LockCreatedAt:          timestamp(m.LockCreatedAt),
		LockExpiresAt:          timestamp(m.LockExpiresAt),
		SSORegistrations:       []struct{}{},
		OAuthRegistrations:     []struct{}{},
		TrustedMetadata:        object(m.TrustedMetadata),
		UntrustedMetadata:      object(m.UntrustedMetadata),
		CreatedAt:              timestamp(m.CreatedAt),
		UpdatedAt:              timestamp(m.UpdatedAt),
	}
}

type memberSessionJSON struct {
	MemberSessionID       string         `json:"member_session_id"`
	MemberID              string         `json:"member_id"`
	OrganizationID        string         `json:"organization_id"`
	OrganizationSlug      string         `json:"organization_slug"`
	StartedAt             timestamp      `json:"started_at"`
	LastAccessedAt        timestamp      `json:"last_accessed_at"`
	ExpiresAt             timestamp      `json:"expires_at"`
	AuthenticationFactors []auth.Factor  `json:"authentication_factors"`
	Roles                 []string       `json:"roles"`
	CustomClaims          map[string]any `json:"custom_claims"`
}

// sessionOut renders a session; its roles are the member's current ones and its slug the
// organization's current one.
func sessionOut(sess *auth.Session, m *auth.Member, org *auth.Organization) *memberSessionJSON {
	if sess == nil {
		return nil
	}
	return &memberSessionJSON{
		MemberSessionID:       sess.ID,
		MemberID:              sess.MemberID,
		OrganizationID:        sess.OrganizationID,
		OrganizationSlug:      org.Slug,
		StartedAt:             timestamp(sess.StartedAt),
		LastAccessedAt:        timestamp(sess.LastAccessedAt),
		ExpiresAt:             timestamp(sess.ExpiresAt),
		AuthenticationFactors: list(sess.Factors),
		Roles:                 m.RoleIDs(),
		CustomClaims:          object(sess.CustomClaims),
	}
}

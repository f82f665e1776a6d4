package client

import (
	"context"
	"net/http"
)

// OrganizationsClient calls the organization endpoints.
type OrganizationsClient struct{ c *Client }

// OrganizationFields are the writable organization settings (CONTRACT.md §5.1). A nil field is
// not sent: on create it takes its default, on update it stays unchanged.
type OrganizationFields struct {
	OrganizationSlug                     *string                           `json:"organization_slug,omitempty"`
	OrganizationLogoURL                  *string                           `json:"organization_logo_url,omitempty"`
	OrganizationExternalID               *string                           `json:"organization_external_id,omitempty"`
	TrustedMetadata                      map[string]any                    `json:"trusted_metadata,omitzero"` // replaced as a whole
	MFAPolicy                            *string                           `json:"mfa_policy,omitempty"`
	MFAMethods                           *string                           `json:"mfa_methods,omitempty"`
	AllowedMFAMethods                    []string                          `json:"allowed_mfa_methods,omitzero"`
	AuthMethods                          *string                           `json:"auth_methods,omitempty"`
	AllowedAuthMethods                   []string                          `json:"allowed_auth_methods,omitzero"`
	SSOJITProvisioning                   *string                           `json:"sso_jit_provisioning,omitempty"`
	SSOJITProvisioningAllowedConnections []string                          `json:"sso_jit_provisioning_allowed_connections,omitzero"`
	EmailInvites                         *string                           `json:"email_invites,omitempty"`
	EmailJITProvisioning                 *string                           `json:"email_jit_provisioning,omitempty"`
	OAuthTenantJITProvisioning           *string                           `json:"oauth_tenant_jit_provisioning,omitempty"`
	FirstPartyConnectedAppsAllowedType   *string                           `json:"first_party_connected_apps_allowed_type,omitempty"`
	ThirdPartyConnectedAppsAllowedType   *string                           `json:"third_party_connected_apps_allowed_type,omitempty"`
	AllowedFirstPartyConnectedApps       []string                          `json:"allowed_first_party_connected_apps,omitzero"`
	AllowedThirdPartyConnectedApps       []string                          `json:"allowed_third_party_connected_apps,omitzero"`
	EmailAllowedDomains                  []string                          `json:"email_allowed_domains,omitzero"`
	ClaimedEmailDomains                  []string                          `json:"claimed_email_domains,omitzero"`
	RBACEmailImplicitRoleAssignments     []RBACEmailImplicitRoleAssignment `json:"rbac_email_implicit_role_assignments,omitzero"`
	AllowedOAuthTenants                  map[string][]string               `json:"allowed_oauth_tenants,omitzero"`
	SSODefaultConnectionID               *string                           `json:"sso_default_connection_id,omitempty"` // only "" is accepted
}

// CreateOrganizationParams is an organization create request.
type CreateOrganizationParams struct {
	OrganizationName string `json:"organization_name"` // required, 1-128 characters
	OrganizationFields
}

// OrganizationResponse is the answer of organization create, get and update.
type OrganizationResponse struct {
	RequestID    string       `json:"request_id"`
	Organization Organization `json:"organization"`
	StatusCode   int          `json:"status_code"`
}

// Create creates an organization.
func (o *OrganizationsClient) Create(ctx context.Context, p CreateOrganizationParams) (*OrganizationResponse, error) {
	return answer[OrganizationResponse](ctx, o.c, call{method: http.MethodPost, path: "/v1/b2b/organizations", body: p})
}

// GetOrganizationParams names an organization.
type GetOrganizationParams struct {
	OrganizationID string // organization id, slug or external id
}

// Get returns an organization.
func (o *OrganizationsClient) Get(ctx context.Context, p GetOrganizationParams) (*OrganizationResponse, error) {
	if err := required("organization_id", p.OrganizationID); err != nil {
		return nil, err
	}
	return answer[OrganizationResponse](ctx, o.c, call{method: http.MethodGet, path: organizationsPath + pathEscape(p.OrganizationID)})
}

// UpdateOrganizationParams is an organization update: only the fields set are changed.
type UpdateOrganizationParams struct {
	OrganizationID   string  `json:"-"` // in the path
	OrganizationName *string `json:"organization_name,omitempty"`
	OrganizationFields
	Authorization Authorization `json:"-"`
}

// Update changes an organization's settings.
func (o *OrganizationsClient) Update(ctx context.Context, p UpdateOrganizationParams) (*OrganizationResponse, error) {
	if err := required("organization_id", p.OrganizationID); err != nil {
		return nil, err
	}
	return answer[OrganizationResponse](ctx, o.c, call{
		method:  http.MethodPut,
		path:    organizationsPath + pathEscape(p.OrganizationID),
		body:    p,
		headers: p.Authorization.headers(),
	})
}

// DeleteOrganizationParams names the organization to delete.
type DeleteOrganizationParams struct {
	OrganizationID string
	Authorization  Authorization
}

// DeleteOrganizationResponse is the answer of organization delete.
type DeleteOrganizationResponse struct {
	RequestID      string `json:"request_id"`
	OrganizationID string `json:"organization_id"`
	StatusCode     int    `json:"status_code"`
}

// Delete deletes an organization with its members, sessions, TOTP registrations and codes.
func (o *OrganizationsClient) Delete(ctx context.Context, p DeleteOrganizationParams) (*DeleteOrganizationResponse, error) {
	if err := required("organization_id", p.OrganizationID); err != nil {
		return nil, err
	}
	return answer[DeleteOrganizationResponse](ctx, o.c, call{
		method:  http.MethodDelete,
		path:    organizationsPath + pathEscape(p.OrganizationID),
		headers: p.Authorization.headers(),
	})
}

// SearchOrganizationsParams is an organization search. No query matches every organization.
type SearchOrganizationsParams struct {
	Cursor string       `json:"cursor,omitempty"` // the previous page's next_cursor
	Limit  *int         `json:"limit,omitempty"`  // 1-1000, 100 when nil
	Query  *SearchQuery `json:"query,omitempty"`
}

// SearchQuery combines filters with AND or OR.
type SearchQuery struct {
	Operator string          `json:"operator"` // AND or OR
	Operands []SearchOperand `json:"operands"`
}

// SearchOperand is one filter, e.g. {"organization_slugs", []string{"acme"}}; CONTRACT.md §6.2
// lists the filter names and their value types.
type SearchOperand struct {
	FilterName  string `json:"filter_name"`
	FilterValue any    `json:"filter_value"`
}

// SearchOrganizationsResponse is one page of search results.
type SearchOrganizationsResponse struct {
	RequestID       string          `json:"request_id"`
	Organizations   []Organization  `json:"organizations"`
	ResultsMetadata ResultsMetadata `json:"results_metadata"`
	StatusCode      int             `json:"status_code"`
}

// Search lists organizations matching a query, ordered by creation.
func (o *OrganizationsClient) Search(ctx context.Context, p SearchOrganizationsParams) (*SearchOrganizationsResponse, error) {
	return answer[SearchOrganizationsResponse](ctx, o.c, call{method: http.MethodPost, path: "/v1/b2b/organizations/search", body: p})
}

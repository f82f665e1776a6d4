package api

import (
	"net/http"

	"github.com/sparekey/sparekey/internal/auth"
)

// organizationRequest is the writable organization fields (§6.2). A body organization_id, which
// the Go and Python SDKs send on update, is ignored: the path names the organization.
type organizationRequest struct {
	OrganizationName                     *string                `json:"organization_name"`
	OrganizationSlug                     *string                `json:"organization_slug"`
	OrganizationLogoURL                  *string                `json:"organization_logo_url"`
	OrganizationExternalID               *string                `json:"organization_external_id"`
	TrustedMetadata                      *map[string]any        `json:"trusted_metadata"`
	MFAPolicy                            *string                `json:"mfa_policy"`
	MFAMethods                           *string                `json:"mfa_methods"`
	AllowedMFAMethods                    *[]string              `json:"allowed_mfa_methods"`
	AuthMethods                          *string                `json:"auth_methods"`
	AllowedAuthMethods                   *[]string              `json:"allowed_auth_methods"`
	SSOJITProvisioning                   *string                `json:"sso_jit_provisioning"`
	SSOJITProvisioningAllowedConnections *[]string              `json:"sso_jit_provisioning_allowed_connections"`
	EmailInvites                         *string                `json:"email_invites"`
	EmailJITProvisioning                 *string                `json:"email_jit_provisioning"`
	OAuthTenantJITProvisioning           *string                `json:"oauth_tenant_jit_provisioning"`
	FirstPartyConnectedAppsAllowedType   *string                `json:"first_party_connected_apps_allowed_type"`
	ThirdPartyConnectedAppsAllowedType   *string                `json:"third_party_connected_apps_allowed_type"`
	AllowedFirstPartyConnectedApps       *[]string              `json:"allowed_first_party_connected_apps"`
	AllowedThirdPartyConnectedApps       *[]string              `json:"allowed_third_party_connected_apps"`
	EmailAllowedDomains                  *[]string              `json:"email_allowed_domains"`
	ClaimedEmailDomains                  *[]string              `json:"claimed_email_domains"`
	RBACEmailImplicitRoleAssignments     *[]auth.RoleAssignment `json:"rbac_email_implicit_role_assignments"`
	AllowedOAuthTenants                  *map[string][]string   `json:"allowed_oauth_tenants"`
	SSODefaultConnectionID               *string                `json:"sso_default_connection_id"`
}

func (q *organizationRequest) input() auth.OrganizationInput {
	return auth.OrganizationInput{
		Name:                                 q.OrganizationName,
		Slug:                                 q.OrganizationSlug,
		LogoURL:                              q.OrganizationLogoURL,
		ExternalID:                           q.OrganizationExternalID,
		TrustedMetadata:                      q.TrustedMetadata,
		MFAPolicy:                            q.MFAPolicy,
		MFAMethods:                           q.MFAMethods,
		AllowedMFAMethods:                    q.AllowedMFAMethods,
		AuthMethods:                          q.AuthMethods,
		AllowedAuthMethods:                   q.AllowedAuthMethods,
		SSOJITProvisioning:                   q.SSOJITProvisioning,
		SSOJITProvisioningAllowedConnections: q.SSOJITProvisioningAllowedConnections,
		EmailInvites:                         q.EmailInvites,
		EmailJITProvisioning:                 q.EmailJITProvisioning,
		OAuthTenantJITProvisioning:           q.OAuthTenantJITProvisioning,
		FirstPartyConnectedAppsAllowedType:   q.FirstPartyConnectedAppsAllowedType,
		ThirdPartyConnectedAppsAllowedType:   q.ThirdPartyConnectedAppsAllowedType,
		AllowedFirstPartyConnectedApps:       q.AllowedFirstPartyConnectedApps,
		AllowedThirdPartyConnectedApps:       q.AllowedThirdPartyConnectedApps,
		EmailAllowedDomains:                  q.EmailAllowedDomains,
		ClaimedEmailDomains:                  q.ClaimedEmailDomains,
		RBACEmailImplicitRoleAssignments:     q.RBACEmailImplicitRoleAssignments,
		AllowedOAuthTenants:                  q.AllowedOAuthTenants,
		SSODefaultConnectionID:               q.SSODefaultConnectionID,
	}
}

type organizationResponse struct {
	envelope
	Organization organizationJSON `json:"organization"`
}

func (s *Server) createOrganization(w http.ResponseWriter, r *http.Request, projectID string) {
	var req organizationRequest
	if !s.decode(w, r, &req) {
		return
	}
	o, err := s.svc.CreateOrganization(r.Context(), projectID, req.input())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.ok(w, r, &organizationResponse{Organization: organizationOut(&o)})
}

func (s *Server) getOrganization(w http.ResponseWriter, r *http.Request, projectID string) {
	o, err := s.svc.GetOrganization(r.Context(), projectID, r.PathValue("organization_id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.ok(w, r, &organizationResponse{Organization: organizationOut(&o)})
}

func (s *Server) updateOrganization(w http.ResponseWriter, r *http.Request, projectID string) {
	var req organizationRequest
	if !s.decode(w, r, &req) {
		return
	}
	o, err := s.svc.UpdateOrganization(r.Context(), projectID, r.PathValue("organization_id"), req.input(), actor(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.ok(w, r, &organizationResponse{Organization: organizationOut(&o)})
}

type organizationDeleted struct {
	envelope
	OrganizationID string `json:"organization_id"`
}

func (s *Server) deleteOrganization(w http.ResponseWriter, r *http.Request, projectID string) {
	if !s.decode(w, r, &struct{}{}) {
		return
	}
	id, err := s.svc.DeleteOrganization(r.Context(), projectID, r.PathValue("organization_id"), actor(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.ok(w, r, &organizationDeleted{OrganizationID: id})
}

type searchRequest struct {
	Cursor string  `json:"cursor"`
	Limit  *number `json:"limit"`
	Query  *struct {
		Operator string `json:"operator"`
		Operands []struct {
			FilterName  string `json:"filter_name"`
			FilterValue any    `json:"filter_value"`
		} `json:"operands"`
	} `json:"query"`
}

type searchResponse struct {
	envelope
	Organizations   []organizationJSON `json:"organizations"`
	ResultsMetadata struct {
		Total      int     `json:"total"`
		NextCursor *string `json:"next_cursor"`
	} `json:"results_metadata"`
}

func (s *Server) searchOrganizations(w http.ResponseWriter, r *http.Request, projectID string) {
	var req searchRequest
	if !s.decode(w, r, &req) {
		return
	}
	in := auth.SearchInput{Cursor: req.Cursor, Limit: req.Limit.arg()}
	if req.Query != nil {
		in.Query = &auth.SearchQuery{Operator: req.Query.Operator}
		for _, op := range req.Query.Operands {
			in.Query.Operands = append(in.Query.Operands, auth.SearchOperand{FilterName: op.FilterName, FilterValue: op.FilterValue})
		}
	}
	res, err := s.svc.SearchOrganizations(r.Context(), projectID, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := &searchResponse{Organizations: make([]organizationJSON, 0, len(res.Organizations))}
	for i := range res.Organizations {
		out.Organizations = append(out.Organizations, organizationOut(&res.Organizations[i]))
	}
	out.ResultsMetadata.Total = res.Total
	if res.NextCursor != "" {
		out.ResultsMetadata.NextCursor = &res.NextCursor
	}
	s.ok(w, r, out)
}

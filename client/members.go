package client

import (
	"context"
	"net/http"
	"net/url"
)

// MembersClient calls the member endpoints.
type MembersClient struct{ c *Client }

const organizationsPath = "/v1/b2b/organizations/"

// CreateMemberParams is a member create request.
type CreateMemberParams struct {
	OrganizationID        string         `json:"-"`             // in the path: id, slug or external id
	EmailAddress          string         `json:"email_address"` // required
	Name                  *string        `json:"name,omitempty"`
	ExternalID            *string        `json:"external_id,omitempty"`
	TrustedMetadata       map[string]any `json:"trusted_metadata,omitzero"`
	UntrustedMetadata     map[string]any `json:"untrusted_metadata,omitzero"`
	CreateMemberAsPending *bool          `json:"create_member_as_pending,omitempty"`
	IsBreakglass          *bool          `json:"is_breakglass,omitempty"`
	MFAPhoneNumber        *string        `json:"mfa_phone_number,omitempty"` // E.164
	MFAEnrolled           *bool          `json:"mfa_enrolled,omitempty"`
	Roles                 []string       `json:"roles,omitzero"` // explicit roles, e.g. stytch_admin
	Authorization         Authorization  `json:"-"`
}

// MemberResponse is the answer of member create, get, update and TOTP delete.
type MemberResponse struct {
	RequestID    string       `json:"request_id"`
	MemberID     string       `json:"member_id"`
	Member       Member       `json:"member"`
	Organization Organization `json:"organization"`
	StatusCode   int          `json:"status_code"`
}

// Create adds a member to an organization.
func (m *MembersClient) Create(ctx context.Context, p CreateMemberParams) (*MemberResponse, error) {
	if err := required("organization_id", p.OrganizationID); err != nil {
		return nil, err
	}
	return answer[MemberResponse](ctx, m.c, call{
		method:  http.MethodPost,
		path:    organizationsPath + pathEscape(p.OrganizationID) + "/members",
		body:    p,
		headers: p.Authorization.headers(),
	})
}

// GetMemberParams names a member by id (or external id) or by email address; MemberID wins when
// both are set.
type GetMemberParams struct {
	OrganizationID string
	MemberID       string
	EmailAddress   string
}

// Get returns a member.
func (m *MembersClient) Get(ctx context.Context, p GetMemberParams) (*MemberResponse, error) {
	if err := required("organization_id", p.OrganizationID); err != nil {
		return nil, err
	}
	q := url.Values{}
	if p.MemberID != "" {
		q.Set("member_id", p.MemberID)
	}
	if p.EmailAddress != "" {
		q.Set("email_address", p.EmailAddress)
	}
	return answer[MemberResponse](ctx, m.c, call{method: http.MethodGet, path: organizationsPath + pathEscape(p.OrganizationID) + "/member", query: q})
}

// UpdateMemberParams is a member update: only the fields set are changed.
type UpdateMemberParams struct {
	OrganizationID    string         `json:"-"`
	MemberID          string         `json:"-"`
	Name              *string        `json:"name,omitempty"`
	EmailAddress      *string        `json:"email_address,omitempty"`
	ExternalID        *string        `json:"external_id,omitempty"`
	TrustedMetadata   map[string]any `json:"trusted_metadata,omitzero"`
	UntrustedMetadata map[string]any `json:"untrusted_metadata,omitzero"`
	IsBreakglass      *bool          `json:"is_breakglass,omitempty"`
	MFAPhoneNumber    *string        `json:"mfa_phone_number,omitempty"`
	MFAEnrolled       *bool          `json:"mfa_enrolled,omitempty"`
	Roles             []string       `json:"roles,omitzero"` // replaces the explicit roles
	DefaultMFAMethod  *string        `json:"default_mfa_method,omitempty"`
	// PreserveExistingSessions is accepted for compatibility; sparekey never ends sessions here.
	PreserveExistingSessions *bool         `json:"preserve_existing_sessions,omitempty"`
	Authorization            Authorization `json:"-"`
}

// Update changes a member.
func (m *MembersClient) Update(ctx context.Context, p UpdateMemberParams) (*MemberResponse, error) {
	if err := required("organization_id", p.OrganizationID, "member_id", p.MemberID); err != nil {
		return nil, err
	}
	return answer[MemberResponse](ctx, m.c, call{
		method:  http.MethodPut,
		path:    organizationsPath + pathEscape(p.OrganizationID) + "/members/" + pathEscape(p.MemberID),
		body:    p,
		headers: p.Authorization.headers(),
	})
}

// DeleteMemberParams names the member to delete.
type DeleteMemberParams struct {
	OrganizationID string
	MemberID       string
	Authorization  Authorization
}

// DeleteMemberResponse is the answer of member delete.
type DeleteMemberResponse struct {
	RequestID  string `json:"request_id"`
	MemberID   string `json:"member_id"`
	StatusCode int    `json:"status_code"`
}

// Delete deletes a member with their sessions, TOTP registration, codes and password.
func (m *MembersClient) Delete(ctx context.Context, p DeleteMemberParams) (*DeleteMemberResponse, error) {
	if err := required("organization_id", p.OrganizationID, "member_id", p.MemberID); err != nil {
		return nil, err
	}
	return answer[DeleteMemberResponse](ctx, m.c, call{
		method:  http.MethodDelete,
		path:    organizationsPath + pathEscape(p.OrganizationID) + "/members/" + pathEscape(p.MemberID),
		headers: p.Authorization.headers(),
	})
}

// DeleteTOTPParams names the member whose TOTP registration to delete.
type DeleteTOTPParams struct {
	OrganizationID string
	MemberID       string
	Authorization  Authorization
}

// DeleteTOTP removes a member's TOTP registration and all its recovery codes.
func (m *MembersClient) DeleteTOTP(ctx context.Context, p DeleteTOTPParams) (*MemberResponse, error) {
	if err := required("organization_id", p.OrganizationID, "member_id", p.MemberID); err != nil {
		return nil, err
	}
	return answer[MemberResponse](ctx, m.c, call{
		method:  http.MethodDelete,
		path:    organizationsPath + pathEscape(p.OrganizationID) + "/members/" + pathEscape(p.MemberID) + "/totp",
		headers: p.Authorization.headers(),
	})
}

package client

import (
	"context"
	"net/http"
)

// RecoveryCodesClient calls the three recovery-code endpoints. Their types have the package's
// short names (GetParams, RecoverParams, ...) because they are the API sparekey exists for.
type RecoveryCodesClient struct{ c *Client }

// GetParams names the member whose unused recovery codes to list.
type GetParams struct {
	OrganizationID string // organization id, slug or external id
	MemberID       string // member id or external id
}

// GetResponse is the answer of GET /v1/b2b/recovery_codes/{organization_id}/{member_id}.
type GetResponse struct {
	RequestID     string       `json:"request_id"`
	MemberID      string       `json:"member_id"`
	Member        Member       `json:"member"`
	Organization  Organization `json:"organization"`
	RecoveryCodes []string     `json:"recovery_codes"` // unused codes in issue order
	StatusCode    int          `json:"status_code"`
}

// Get lists a member's unused recovery codes.
func (r *RecoveryCodesClient) Get(ctx context.Context, p GetParams) (*GetResponse, error) {
	if err := required("organization_id", p.OrganizationID, "member_id", p.MemberID); err != nil {
		return nil, err
	}
	return answer[GetResponse](ctx, r.c, call{
		method: http.MethodGet,
		path:   "/v1/b2b/recovery_codes/" + pathEscape(p.OrganizationID) + "/" + pathEscape(p.MemberID),
	})
}

// RecoverParams is a recover request: a recovery code used as the second factor of a login.
// Exactly one of IntermediateSessionToken, SessionToken and SessionJWT must be set.
type RecoverParams struct {
	OrganizationID string `json:"organization_id"`
	MemberID       string `json:"member_id"`
	RecoveryCode   string `json:"recovery_code"`

	IntermediateSessionToken string `json:"intermediate_session_token,omitempty"`
	SessionToken             string `json:"session_token,omitempty"`
	SessionJWT               string `json:"session_jwt,omitempty"`
	// SessionDurationMinutes (5..527040) sets the session's expiry to now + n; nil leaves an
	// existing session's expiry alone and gives a new one 60 minutes.
	SessionDurationMinutes *int `json:"session_duration_minutes,omitempty"`
	// SessionCustomClaims is deep-merged into the session's claims; a nil value deletes a key.
	SessionCustomClaims map[string]any `json:"session_custom_claims,omitzero"`
	TelemetryID         string         `json:"telemetry_id,omitempty"`
}

// RecoverResponse is the answer of POST /v1/b2b/recovery_codes/recover.
type RecoverResponse struct {
	RequestID    string       `json:"request_id"`
	MemberID     string       `json:"member_id"`
	Member       Member       `json:"member"`
	Organization Organization `json:"organization"`
	// SessionToken is a new token (IST sent), the sent token, or "" when the session was named
	// by its JWT only.
	SessionToken           string        `json:"session_token"`
	SessionJWT             string        `json:"session_jwt"`
	MemberSession          MemberSession `json:"member_session"`
	RecoveryCodesRemaining int           `json:"recovery_codes_remaining"`
	// MemberDevice is nil unless the server has a device lookup configured.
	MemberDevice map[string]any `json:"member_device,omitempty"`
	StatusCode   int            `json:"status_code"`
}

// Recover authenticates a member with one of their recovery codes, consuming it.
func (r *RecoveryCodesClient) Recover(ctx context.Context, p RecoverParams) (*RecoverResponse, error) {
	return answer[RecoverResponse](ctx, r.c, call{method: http.MethodPost, path: "/v1/b2b/recovery_codes/recover", body: p})
}

// RotateParams names the member whose recovery codes to replace.
type RotateParams struct {
	OrganizationID string `json:"organization_id"`
	MemberID       string `json:"member_id"`
}

// RotateResponse is the answer of POST /v1/b2b/recovery_codes/rotate: the GET fields, with the
// ten new codes.
type RotateResponse struct {
	RequestID     string       `json:"request_id"`
	MemberID      string       `json:"member_id"`
	Member        Member       `json:"member"`
	Organization  Organization `json:"organization"`
	RecoveryCodes []string     `json:"recovery_codes"`
	StatusCode    int          `json:"status_code"`
}

// Rotate replaces all of a member's recovery codes, used and unused, with ten new ones.
func (r *RecoveryCodesClient) Rotate(ctx context.Context, p RotateParams) (*RotateResponse, error) {
	return answer[RotateResponse](ctx, r.c, call{method: http.MethodPost, path: "/v1/b2b/recovery_codes/rotate", body: p})
}

package client

import (
	"context"
	"net/http"
)

// TOTPsClient calls the TOTP endpoints.
type TOTPsClient struct{ c *Client }

// CreateTOTPParams is a TOTP create request. The session arguments are optional, at most one, and
// when sent must belong to the member.
type CreateTOTPParams struct {
	OrganizationID           string `json:"organization_id"`
	MemberID                 string `json:"member_id"`
	ExpirationMinutes        *int   `json:"expiration_minutes,omitempty"` // 5-1440; no effect on sparekey
	IntermediateSessionToken string `json:"intermediate_session_token,omitempty"`
	SessionToken             string `json:"session_token,omitempty"`
	SessionJWT               string `json:"session_jwt,omitempty"`
}

// CreateTOTPResponse is the answer of TOTP create: the new secret and the ten recovery codes.
type CreateTOTPResponse struct {
	RequestID          string       `json:"request_id"`
	MemberID           string       `json:"member_id"`
	TOTPRegistrationID string       `json:"totp_registration_id"`
	Secret             string       `json:"secret"`  // base32
	QRCode             string       `json:"qr_code"` // data:image/png;base64,...
	RecoveryCodes      []string     `json:"recovery_codes"`
	Member             Member       `json:"member"`
	Organization       Organization `json:"organization"`
	StatusCode         int          `json:"status_code"`
}

// Create registers an authenticator app for a member and issues their recovery codes.
func (t *TOTPsClient) Create(ctx context.Context, p CreateTOTPParams) (*CreateTOTPResponse, error) {
	return answer[CreateTOTPResponse](ctx, t.c, call{method: http.MethodPost, path: "/v1/b2b/totp", body: p})
}

// AuthenticateTOTPParams is a TOTP authenticate request. Exactly one of IntermediateSessionToken,
// SessionToken and SessionJWT must be set.
type AuthenticateTOTPParams struct {
	OrganizationID           string         `json:"organization_id"`
	MemberID                 string         `json:"member_id"`
	Code                     string         `json:"code"`
	IntermediateSessionToken string         `json:"intermediate_session_token,omitempty"`
	SessionToken             string         `json:"session_token,omitempty"`
	SessionJWT               string         `json:"session_jwt,omitempty"`
	SessionDurationMinutes   *int           `json:"session_duration_minutes,omitempty"`
	SessionCustomClaims      map[string]any `json:"session_custom_claims,omitzero"`
	SetMFAEnrollment         *string        `json:"set_mfa_enrollment,omitempty"` // enroll or unenroll
	SetDefaultMFA            *bool          `json:"set_default_mfa,omitempty"`
	TelemetryID              string         `json:"telemetry_id,omitempty"`
}

// AuthenticateTOTPResponse is the answer of TOTP authenticate.
type AuthenticateTOTPResponse struct {
	RequestID     string         `json:"request_id"`
	MemberID      string         `json:"member_id"`
	Member        Member         `json:"member"`
	Organization  Organization   `json:"organization"`
	SessionToken  string         `json:"session_token"`
	SessionJWT    string         `json:"session_jwt"`
	MemberSession MemberSession  `json:"member_session"`
	MemberDevice  map[string]any `json:"member_device,omitempty"`
	StatusCode    int            `json:"status_code"`
}

// Authenticate checks a TOTP code as the second factor of a login.
func (t *TOTPsClient) Authenticate(ctx context.Context, p AuthenticateTOTPParams) (*AuthenticateTOTPResponse, error) {
	return answer[AuthenticateTOTPResponse](ctx, t.c, call{method: http.MethodPost, path: "/v1/b2b/totp/authenticate", body: p})
}

// MigrateTOTPParams imports a TOTP secret from another system, with its recovery codes if any
// (nil mints ten new ones).
type MigrateTOTPParams struct {
	OrganizationID string   `json:"organization_id"`
	MemberID       string   `json:"member_id"`
	Secret         string   `json:"secret"`
	RecoveryCodes  []string `json:"recovery_codes,omitzero"`
}

// MigrateTOTPResponse is the answer of TOTP migrate.
type MigrateTOTPResponse struct {
	RequestID          string       `json:"request_id"`
	MemberID           string       `json:"member_id"`
	Member             Member       `json:"member"`
	Organization       Organization `json:"organization"`
	TOTPRegistrationID string       `json:"totp_registration_id"`
	RecoveryCodes      []string     `json:"recovery_codes"`
	StatusCode         int          `json:"status_code"`
}

// Migrate imports a member's existing TOTP registration.
func (t *TOTPsClient) Migrate(ctx context.Context, p MigrateTOTPParams) (*MigrateTOTPResponse, error) {
	return answer[MigrateTOTPResponse](ctx, t.c, call{method: http.MethodPost, path: "/v1/b2b/totp/migrate", body: p})
}

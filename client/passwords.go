package client

import (
	"context"
	"net/http"
	"time"
)

// PasswordsClient calls the password endpoints.
type PasswordsClient struct{ c *Client }

// MigratePasswordParams imports a password hash from another system, creating the member when
// the address is new (the profile fields are then used; for an existing member they are ignored).
type MigratePasswordParams struct {
	OrganizationID string `json:"organization_id"`
	EmailAddress   string `json:"email_address"`
	Hash           string `json:"hash"`
	// HashType is bcrypt, argon_2i, argon_2id, scrypt, pbkdf_2, sha_1 or md_5; the matching
	// config object below, if the type has one, describes a bare digest.
	HashType                 string         `json:"hash_type"`
	Argon2Config             *Argon2Config  `json:"argon_2_config,omitempty"`
	ScryptConfig             *ScryptConfig  `json:"scrypt_config,omitempty"`
	PBKDF2Config             *PBKDF2Config  `json:"pbkdf_2_config,omitempty"`
	SHA1Config               *SHA1Config    `json:"sha_1_config,omitempty"`
	MD5Config                *MD5Config     `json:"md_5_config,omitempty"`
	Name                     *string        `json:"name,omitempty"`
	TrustedMetadata          map[string]any `json:"trusted_metadata,omitzero"`
	UntrustedMetadata        map[string]any `json:"untrusted_metadata,omitzero"`
	Roles                    []string       `json:"roles,omitzero"`
	MFAPhoneNumber           *string        `json:"mfa_phone_number,omitempty"`
	SetPhoneNumberVerified   *bool          `json:"set_phone_number_verified,omitempty"`
	ExternalID               *string        `json:"external_id,omitempty"`
	PreserveExistingSessions *bool          `json:"preserve_existing_sessions,omitempty"`
}

// Argon2Config describes a hex argon2 digest.
type Argon2Config struct {
	Salt            string `json:"salt"`
	IterationAmount int    `json:"iteration_amount"`
	Memory          int    `json:"memory"` // KiB
	Threads         int    `json:"threads"`
	KeyLength       int    `json:"key_length"`
}

// ScryptConfig describes a base64 scrypt digest.
type ScryptConfig struct {
	Salt       string `json:"salt"` // base64
	NParameter int    `json:"n_parameter"`
	RParameter int    `json:"r_parameter"`
	PParameter int    `json:"p_parameter"`
	KeyLength  int    `json:"key_length"`
}

// PBKDF2Config describes a base64 PBKDF2-HMAC digest.
type PBKDF2Config struct {
	Salt            string `json:"salt"` // base64
	IterationAmount int    `json:"iteration_amount"`
	KeyLength       int    `json:"key_length"`
	Algorithm       string `json:"algorithm,omitempty"` // sha256 (when empty) or sha512
}

// SHA1Config holds the salts glued around the password before a sha_1 digest is taken.
type SHA1Config struct {
	PrependSalt string `json:"prepend_salt"`
	AppendSalt  string `json:"append_salt"`
}

// MD5Config holds the salts glued around the password before an md_5 digest is taken.
type MD5Config struct {
	PrependSalt string `json:"prepend_salt"`
	AppendSalt  string `json:"append_salt"`
}

// MigratePasswordResponse is the answer of password migrate.
type MigratePasswordResponse struct {
	RequestID     string       `json:"request_id"`
	MemberID      string       `json:"member_id"`
	MemberCreated bool         `json:"member_created"`
	Member        Member       `json:"member"`
	Organization  Organization `json:"organization"`
	StatusCode    int          `json:"status_code"`
}

// Migrate sets a member's password from a hash, creating the member if needed.
func (pw *PasswordsClient) Migrate(ctx context.Context, p MigratePasswordParams) (*MigratePasswordResponse, error) {
	return answer[MigratePasswordResponse](ctx, pw.c, call{method: http.MethodPost, path: "/v1/b2b/passwords/migrate", body: p})
}

// AuthenticatePasswordParams is a password login. The session arguments are optional, at most
// one; a live session of the member spares the MFA step.
type AuthenticatePasswordParams struct {
	OrganizationID           string         `json:"organization_id"`
	EmailAddress             string         `json:"email_address"`
	Password                 string         `json:"password"`
	IntermediateSessionToken string         `json:"intermediate_session_token,omitempty"`
	SessionToken             string         `json:"session_token,omitempty"`
	SessionJWT               string         `json:"session_jwt,omitempty"`
	SessionDurationMinutes   *int           `json:"session_duration_minutes,omitempty"`
	SessionCustomClaims      map[string]any `json:"session_custom_claims,omitzero"`
	Locale                   string         `json:"locale,omitempty"` // ignored by sparekey
	TelemetryID              string         `json:"telemetry_id,omitempty"`
}

// AuthenticatePasswordResponse is the answer of password authenticate. When MFA is required,
// MemberAuthenticated is false, MFARequired and IntermediateSessionToken are set, and there is no
// session; otherwise MemberSession, SessionToken and SessionJWT are.
type AuthenticatePasswordResponse struct {
	RequestID                         string           `json:"request_id"`
	MemberID                          string           `json:"member_id"`
	OrganizationID                    string           `json:"organization_id"`
	Member                            Member           `json:"member"`
	Organization                      Organization     `json:"organization"`
	SessionToken                      string           `json:"session_token"`
	SessionJWT                        string           `json:"session_jwt"`
	MemberSession                     *MemberSession   `json:"member_session"`
	MemberAuthenticated               bool             `json:"member_authenticated"`
	IntermediateSessionToken          string           `json:"intermediate_session_token"`
	IntermediateSessionTokenExpiresAt *time.Time       `json:"intermediate_session_token_expires_at"`
	MFARequired                       *MFARequired     `json:"mfa_required"`
	PrimaryRequired                   *PrimaryRequired `json:"primary_required"`
	MemberDevice                      map[string]any   `json:"member_device,omitempty"`
	StatusCode                        int              `json:"status_code"`
}

// Authenticate checks a member's email address and password.
func (pw *PasswordsClient) Authenticate(ctx context.Context, p AuthenticatePasswordParams) (*AuthenticatePasswordResponse, error) {
	return answer[AuthenticatePasswordResponse](ctx, pw.c, call{method: http.MethodPost, path: "/v1/b2b/passwords/authenticate", body: p})
}

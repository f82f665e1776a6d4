package api

import (
	"net/http"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/password"
)

type migratePasswordRequest struct {
	OrganizationID string `json:"organization_id"`
	EmailAddress   string `json:"email_address"`
	Hash           string `json:"hash"`
	HashType       string `json:"hash_type"`
	password.Config
	Name                     *string         `json:"name"`
	TrustedMetadata          *map[string]any `json:"trusted_metadata"`
	UntrustedMetadata        *map[string]any `json:"untrusted_metadata"`
	Roles                    *[]string       `json:"roles"`
	MFAPhoneNumber           *string         `json:"mfa_phone_number"`
	SetPhoneNumberVerified   *bool           `json:"set_phone_number_verified"`
	ExternalID               *string         `json:"external_id"`
	PreserveExistingSessions *bool           `json:"preserve_existing_sessions"`
}

type migratePasswordResponse struct {
	envelope
	MemberID      string           `json:"member_id"`
	MemberCreated bool             `json:"member_created"`
	Member        memberJSON       `json:"member"`
	Organization  organizationJSON `json:"organization"`
}

func (s *Server) migratePassword(w http.ResponseWriter, r *http.Request, projectID string) {
	var req migratePasswordRequest
	if !s.decode(w, r, &req) {
		return
	}
	out, err := s.svc.MigratePassword(r.Context(), projectID, auth.MigratePasswordInput{
		OrganizationID:         req.OrganizationID,
		EmailAddress:           req.EmailAddress,
		Hash:                   req.Hash,
		HashType:               req.HashType,
		Config:                 req.Config,
		Name:                   req.Name,
		TrustedMetadata:        req.TrustedMetadata,
		UntrustedMetadata:      req.UntrustedMetadata,
		Roles:                  req.Roles,
		MFAPhoneNumber:         req.MFAPhoneNumber,
		SetPhoneNumberVerified: req.SetPhoneNumberVerified,
		ExternalID:             req.ExternalID,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.ok(w, r, &migratePasswordResponse{
		MemberID:      out.Member.ID,
		MemberCreated: out.MemberCreated,
		Member:        memberOut(&out.Member),
		Organization:  organizationOut(&out.Organization),
	})
}

type authenticatePasswordRequest struct {
	sessionRequest
	OrganizationID string `json:"organization_id"`
	EmailAddress   string `json:"email_address"`
	Password       string `json:"password"`
	Locale         string `json:"locale"`
	TelemetryID    string `json:"telemetry_id"`
}

type mfaRequiredJSON struct {
	MemberOptions struct {
		MFAPhoneNumber     string `json:"mfa_phone_number"`
		TOTPRegistrationID string `json:"totp_registration_id"`
	} `json:"member_options"`
	SecondaryAuthInitiated *string `json:"secondary_auth_initiated"`
}

type authenticatePasswordResponse struct {
	envelope
	MemberID                          string             `json:"member_id"`
	OrganizationID                    string             `json:"organization_id"`
	Member                            memberJSON         `json:"member"`
	Organization                      organizationJSON   `json:"organization"`
	SessionToken                      string             `json:"session_token"`
	SessionJWT                        string             `json:"session_jwt"`
	MemberSession                     *memberSessionJSON `json:"member_session"`
	MemberAuthenticated               bool               `json:"member_authenticated"`
	IntermediateSessionToken          string             `json:"intermediate_session_token"`
	IntermediateSessionTokenExpiresAt timestamp          `json:"intermediate_session_token_expires_at"`
	MFARequired                       *mfaRequiredJSON   `json:"mfa_required"`
	PrimaryRequired                   *struct{}          `json:"primary_required"`
}

func (s *Server) authenticatePassword(w http.ResponseWriter, r *http.Request, projectID string) {
	var req authenticatePasswordRequest
	if !s.decode(w, r, &req) {
		return
	}
	out, err := s.svc.AuthenticatePassword(r.Context(), projectID, auth.AuthenticatePasswordInput{
		OrganizationID: req.OrganizationID,
		EmailAddress:   req.EmailAddress,
		Password:       req.Password,
		SessionArgs:    req.args(),
		SessionOptions: req.options(),
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := &authenticatePasswordResponse{
		MemberID:                          out.Member.ID,
		OrganizationID:                    out.Organization.ID,
		Member:                            memberOut(&out.Member),
		Organization:                      organizationOut(&out.Organization),
		SessionToken:                      out.SessionToken,
		SessionJWT:                        out.SessionJWT,
		MemberSession:                     sessionOut(out.Session, &out.Member, &out.Organization),
		MemberAuthenticated:               out.MemberAuthenticated,
		IntermediateSessionToken:          out.IntermediateSessionToken,
		IntermediateSessionTokenExpiresAt: timestamp(out.ISTExpiresAt),
	}
	if !out.MemberAuthenticated {
		resp.MFARequired = &mfaRequiredJSON{}
		resp.MFARequired.MemberOptions.MFAPhoneNumber, resp.MFARequired.MemberOptions.TOTPRegistrationID = out.Member.MFAOptions()
	}
	s.ok(w, r, resp)
}

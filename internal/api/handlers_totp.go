package api

import (
	"net/http"

	"github.com/sparekey/sparekey/internal/auth"
)

type createTOTPRequest struct {
	memberRefRequest
	ExpirationMinutes        *number `json:"expiration_minutes"`
	IntermediateSessionToken string  `json:"intermediate_session_token"`
	SessionToken             string  `json:"session_token"`
	SessionJWT               string  `json:"session_jwt"`
}

type createTOTPResponse struct {
	envelope
	MemberID           string           `json:"member_id"`
	TOTPRegistrationID string           `json:"totp_registration_id"`
	Secret             string           `json:"secret"`
	QRCode             string           `json:"qr_code"`
	RecoveryCodes      []string         `json:"recovery_codes"`
	Member             memberJSON       `json:"member"`
	Organization       organizationJSON `json:"organization"`
}

func (s *Server) createTOTP(w http.ResponseWriter, r *http.Request, projectID string) {
	var req createTOTPRequest
	if !s.decode(w, r, &req) {
		return
	}
	e, err := s.svc.CreateTOTP(r.Context(), projectID, auth.CreateTOTPInput{
		MemberRef:         req.ref(),
		ExpirationMinutes: req.ExpirationMinutes.arg(),
		SessionArgs:       auth.SessionArgs{IntermediateSessionToken: req.IntermediateSessionToken, SessionToken: req.SessionToken, SessionJWT: req.SessionJWT},
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.ok(w, r, &createTOTPResponse{
		MemberID:           e.Member.ID,
		TOTPRegistrationID: e.RegistrationID,
		Secret:             e.Secret,
		QRCode:             e.QRCode,
		RecoveryCodes:      list(e.RecoveryCodes),
		Member:             memberOut(&e.Member),
		Organization:       organizationOut(&e.Organization),
	})
}

type migrateTOTPRequest struct {
	memberRefRequest
	Secret        string   `json:"secret"`
	RecoveryCodes []string `json:"recovery_codes"`
}

type migrateTOTPResponse struct {
	envelope
	MemberID           string           `json:"member_id"`
	Member             memberJSON       `json:"member"`
	Organization       organizationJSON `json:"organization"`
	TOTPRegistrationID string           `json:"totp_registration_id"`
	RecoveryCodes      []string         `json:"recovery_codes"`
}

func (s *Server) migrateTOTP(w http.ResponseWriter, r *http.Request, projectID string) {
	var req migrateTOTPRequest
	if !s.decode(w, r, &req) {
		return
	}
	e, err := s.svc.MigrateTOTP(r.Context(), projectID, auth.MigrateTOTPInput{MemberRef: req.ref(), Secret: req.Secret, RecoveryCodes: req.RecoveryCodes})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.ok(w, r, &migrateTOTPResponse{
		MemberID:           e.Member.ID,
		Member:             memberOut(&e.Member),
		Organization:       organizationOut(&e.Organization),
		TOTPRegistrationID: e.RegistrationID,
		RecoveryCodes:      list(e.RecoveryCodes),
	})
}

type authenticateTOTPRequest struct {
	memberRefRequest
	sessionRequest
	Code             string `json:"code"`
	SetMFAEnrollment string `json:"set_mfa_enrollment"`
	SetDefaultMFA    *bool  `json:"set_default_mfa"`
	TelemetryID      string `json:"telemetry_id"`
}

// sessionGrantResponse is the answer of TOTP authenticate (and the shape recover extends).
type sessionGrantResponse struct {
	envelope
	MemberID      string             `json:"member_id"`
	Member        memberJSON         `json:"member"`
	Organization  organizationJSON   `json:"organization"`
	SessionToken  string             `json:"session_token"`
	SessionJWT    string             `json:"session_jwt"`
	MemberSession *memberSessionJSON `json:"member_session"`
}

func (s *Server) authenticateTOTP(w http.ResponseWriter, r *http.Request, projectID string) {
	var req authenticateTOTPRequest
	if !s.decode(w, r, &req) {
		return
	}
	out, err := s.svc.AuthenticateTOTP(r.Context(), projectID, auth.AuthenticateTOTPInput{
		MemberRef:        req.ref(),
		Code:             req.Code,
		SessionArgs:      req.args(),
		SessionOptions:   req.options(),
		SetMFAEnrollment: req.SetMFAEnrollment,
		SetDefaultMFA:    req.SetDefaultMFA != nil && *req.SetDefaultMFA,
		TelemetryID:      req.TelemetryID,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := sessionGrantOut(&out)
	s.ok(w, r, &resp)
}

func sessionGrantOut(out *auth.Authenticated) sessionGrantResponse {
	return sessionGrantResponse{
		MemberID:      out.Member.ID,
		Member:        memberOut(&out.Member),
		Organization:  organizationOut(&out.Organization),
		SessionToken:  out.SessionToken,
		SessionJWT:    out.SessionJWT,
		MemberSession: sessionOut(out.Session, &out.Member, &out.Organization),
	}
}

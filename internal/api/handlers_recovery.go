package api

import (
	"net/http"

	"github.com/sparekey/sparekey/internal/auth"
)

type recoveryCodesResponse struct {
	envelope
	MemberID      string           `json:"member_id"`
	Member        memberJSON       `json:"member"`
	Organization  organizationJSON `json:"organization"`
	RecoveryCodes []string         `json:"recovery_codes"`
}

func recoveryCodesOut(rc auth.RecoveryCodes) *recoveryCodesResponse {
	return &recoveryCodesResponse{
		MemberID:      rc.Member.ID,
		Member:        memberOut(&rc.Member),
		Organization:  organizationOut(&rc.Organization),
		RecoveryCodes: list(rc.Codes),
	}
}

func (s *Server) getRecoveryCodes(w http.ResponseWriter, r *http.Request, projectID string) {
	rc, err := s.svc.GetRecoveryCodes(r.Context(), projectID, auth.MemberRef{
		OrganizationID: r.PathValue("organization_id"),
		MemberID:       r.PathValue("member_id"),
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.ok(w, r, recoveryCodesOut(rc))
}

type memberRefRequest struct {
	OrganizationID string `json:"organization_id"`
	MemberID       string `json:"member_id"`
}

func (q memberRefRequest) ref() auth.MemberRef {
	return auth.MemberRef{OrganizationID: q.OrganizationID, MemberID: q.MemberID}
}

func (s *Server) rotateRecoveryCodes(w http.ResponseWriter, r *http.Request, projectID string) {
	var req memberRefRequest
	if !s.decode(w, r, &req) {
		return
	}
	rc, err := s.svc.RotateRecoveryCodes(r.Context(), projectID, req.ref())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.ok(w, r, recoveryCodesOut(rc))
}

// sessionRequest holds the session arguments and options shared by the authenticating calls.
type sessionRequest struct {
	IntermediateSessionToken string         `json:"intermediate_session_token"`
	SessionToken             string         `json:"session_token"`
	SessionJWT               string         `json:"session_jwt"`
	SessionDurationMinutes   *number        `json:"session_duration_minutes"`
	SessionCustomClaims      map[string]any `json:"session_custom_claims"`
}

func (q *sessionRequest) args() auth.SessionArgs {
	return auth.SessionArgs{IntermediateSessionToken: q.IntermediateSessionToken, SessionToken: q.SessionToken, SessionJWT: q.SessionJWT}
}

func (q *sessionRequest) options() auth.SessionOptions {
	return auth.SessionOptions{DurationMinutes: q.SessionDurationMinutes.arg(), CustomClaims: q.SessionCustomClaims}
}

type recoverRequest struct {
	memberRefRequest
	sessionRequest
	RecoveryCode string `json:"recovery_code"`
	TelemetryID  string `json:"telemetry_id"`
}

type recoverResponse struct {
	sessionGrantResponse
	RecoveryCodesRemaining int `json:"recovery_codes_remaining"`
}

func (s *Server) recoverCode(w http.ResponseWriter, r *http.Request, projectID string) {
	var req recoverRequest
	if !s.decode(w, r, &req) {
		return
	}
	out, err := s.svc.Recover(r.Context(), projectID, auth.RecoverInput{
		MemberRef:      req.ref(),
		RecoveryCode:   req.RecoveryCode,
		SessionArgs:    req.args(),
		SessionOptions: req.options(),
		TelemetryID:    req.TelemetryID,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.ok(w, r, &recoverResponse{sessionGrantResponse: sessionGrantOut(&out), RecoveryCodesRemaining: out.RecoveryCodesRemaining})
}

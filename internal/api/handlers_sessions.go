package api

import (
	"net/http"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/secret"
)

type authenticateSessionRequest struct {
	sessionRequest
	AuthorizationCheck *struct {
		OrganizationID string `json:"organization_id"`
		ResourceID     string `json:"resource_id"`
		Action         string `json:"action"`
	} `json:"authorization_check"`
}

type verdictJSON struct {
	Authorized    bool     `json:"authorized"`
	GrantingRoles []string `json:"granting_roles"`
}

type authenticateSessionResponse struct {
	envelope
	MemberSession *memberSessionJSON `json:"member_session"`
	SessionToken  string             `json:"session_token"`
	SessionJWT    string             `json:"session_jwt"`
	Member        memberJSON         `json:"member"`
	Organization  organizationJSON   `json:"organization"`
	Verdict       *verdictJSON       `json:"verdict"`
}

func (s *Server) authenticateSession(w http.ResponseWriter, r *http.Request, projectID string) {
	var req authenticateSessionRequest
	if !s.decode(w, r, &req) {
		return
	}
	in := auth.AuthenticateSessionInput{SessionToken: req.SessionToken, SessionJWT: req.SessionJWT, SessionOptions: req.options()}
	if ac := req.AuthorizationCheck; ac != nil {
		in.AuthorizationCheck = &auth.AuthorizationCheck{OrganizationID: ac.OrganizationID, ResourceID: ac.ResourceID, Action: ac.Action}
	}
	out, err := s.svc.AuthenticateSession(r.Context(), projectID, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := &authenticateSessionResponse{
		MemberSession: sessionOut(out.Session, &out.Member, &out.Organization),
		SessionToken:  out.SessionToken,
		SessionJWT:    out.SessionJWT,
		Member:        memberOut(&out.Member),
		Organization:  organizationOut(&out.Organization),
	}
	if out.Verdict != nil {
		resp.Verdict = &verdictJSON{Authorized: out.Verdict.Authorized, GrantingRoles: list(out.Verdict.GrantingRoles)}
	}
	s.ok(w, r, resp)
}

type listSessionsResponse struct {
	envelope
	MemberSessions []*memberSessionJSON `json:"member_sessions"`
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request, projectID string) {
	q := r.URL.Query()
	out, err := s.svc.ListSessions(r.Context(), projectID, auth.MemberRef{OrganizationID: q.Get("organization_id"), MemberID: q.Get("member_id")})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := &listSessionsResponse{MemberSessions: make([]*memberSessionJSON, 0, len(out.Sessions))}
	for i := range out.Sessions {
		resp.MemberSessions = append(resp.MemberSessions, sessionOut(&out.Sessions[i], &out.Member, &out.Organization))
	}
	s.ok(w, r, resp)
}

type revokeRequest struct {
	MemberSessionID string `json:"member_session_id"`
	SessionToken    string `json:"session_token"`
	SessionJWT      string `json:"session_jwt"`
	MemberID        string `json:"member_id"`
}

type revokeResponse struct{ envelope }

func (s *Server) revokeSession(w http.ResponseWriter, r *http.Request, projectID string) {
	var req revokeRequest
	if !s.decode(w, r, &req) {
		return
	}
	err := s.svc.RevokeSession(r.Context(), projectID, auth.RevokeInput(req), actor(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.ok(w, r, &revokeResponse{})
}

type jwksResponse struct {
	Keys []secret.JWK `json:"keys"`
	envelope
}

// jwks needs no credentials: SDKs fetch it without (Ruby sends Basic auth, which is ignored).
func (s *Server) jwks(w http.ResponseWriter, r *http.Request, _ string) {
	keys, err := s.svc.JWKS(r.Context(), r.PathValue("project_id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.ok(w, r, &jwksResponse{Keys: list(keys)})
}

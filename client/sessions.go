package client

import (
	"context"
	"net/http"
	"net/url"
)

// SessionsClient calls the session endpoints and checks session JWTs locally.
type SessionsClient struct {
	c    *Client
	jwks *jwksCache
}

// AuthenticateSessionParams checks a session. Exactly one of SessionToken and SessionJWT must be
// set.
type AuthenticateSessionParams struct {
	SessionToken string `json:"session_token,omitempty"`
	SessionJWT   string `json:"session_jwt,omitempty"`
	// SessionDurationMinutes (5..527040) extends the session to now + n; nil leaves it alone.
	SessionDurationMinutes *int                `json:"session_duration_minutes,omitempty"`
	SessionCustomClaims    map[string]any      `json:"session_custom_claims,omitzero"`
	AuthorizationCheck     *AuthorizationCheck `json:"authorization_check,omitempty"`
}

// AuthorizationCheck asks whether the session's member may perform an action. On sparekey only
// stytch_admin grants anything (every action on every resource).
type AuthorizationCheck struct {
	OrganizationID string `json:"organization_id"`
	ResourceID     string `json:"resource_id"`
	Action         string `json:"action"`
}

// AuthenticateSessionResponse is the answer of sessions authenticate, with a fresh JWT.
type AuthenticateSessionResponse struct {
	RequestID     string        `json:"request_id"`
	MemberSession MemberSession `json:"member_session"`
	SessionToken  string        `json:"session_token"` // the sent token, or "" when the JWT was sent
	SessionJWT    string        `json:"session_jwt"`
	Member        Member        `json:"member"`
	Organization  Organization  `json:"organization"`
	Verdict       *Verdict      `json:"verdict"` // nil without an AuthorizationCheck
	StatusCode    int           `json:"status_code"`
}

// Authenticate checks a session on the server, optionally extending it or merging claims, and
// returns a fresh JWT.
func (s *SessionsClient) Authenticate(ctx context.Context, p AuthenticateSessionParams) (*AuthenticateSessionResponse, error) {
	return answer[AuthenticateSessionResponse](ctx, s.c, call{method: http.MethodPost, path: "/v1/b2b/sessions/authenticate", body: p})
}

// GetSessionsParams names the member whose live sessions to list.
type GetSessionsParams struct {
	OrganizationID string
	MemberID       string
}

// GetSessionsResponse lists a member's live sessions, oldest first.
type GetSessionsResponse struct {
	RequestID      string          `json:"request_id"`
	MemberSessions []MemberSession `json:"member_sessions"`
	StatusCode     int             `json:"status_code"`
}

// Get lists a member's live sessions.
func (s *SessionsClient) Get(ctx context.Context, p GetSessionsParams) (*GetSessionsResponse, error) {
	q := url.Values{}
	if p.OrganizationID != "" {
		q.Set("organization_id", p.OrganizationID)
	}
	if p.MemberID != "" {
		q.Set("member_id", p.MemberID)
	}
	return answer[GetSessionsResponse](ctx, s.c, call{method: http.MethodGet, path: "/v1/b2b/sessions", query: q})
}

// RevokeSessionParams names what to revoke: exactly one of a session (by id, token or JWT) or
// every session of a member (by canonical member id).
type RevokeSessionParams struct {
	MemberSessionID string        `json:"member_session_id,omitempty"`
	SessionToken    string        `json:"session_token,omitempty"`
	SessionJWT      string        `json:"session_jwt,omitempty"`
	MemberID        string        `json:"member_id,omitempty"`
	Authorization   Authorization `json:"-"`
}

// RevokeSessionResponse is the answer of sessions revoke.
type RevokeSessionResponse struct {
	RequestID  string `json:"request_id"`
	StatusCode int    `json:"status_code"`
}

// Revoke ends a session, or all of a member's sessions. JWTs already issued keep passing
// AuthenticateJWTLocal until their exp, at most five minutes later.
func (s *SessionsClient) Revoke(ctx context.Context, p RevokeSessionParams) (*RevokeSessionResponse, error) {
	return answer[RevokeSessionResponse](ctx, s.c, call{method: http.MethodPost, path: "/v1/b2b/sessions/revoke", body: p, headers: p.Authorization.headers()})
}

// JWKSResponse is the project's JWKS: the public keys session JWTs are signed with.
type JWKSResponse struct {
	Keys       []JWK  `json:"keys"`
	RequestID  string `json:"request_id"`
	StatusCode int    `json:"status_code"`
}

// GetJWKS fetches the project's public signing keys. The endpoint needs no credentials and none
// are sent.
func (s *SessionsClient) GetJWKS(ctx context.Context) (*JWKSResponse, error) {
	return answer[JWKSResponse](ctx, s.c, call{method: http.MethodGet, path: "/v1/b2b/sessions/jwks/" + pathEscape(s.c.projectID), noAuth: true})
}

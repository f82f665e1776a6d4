package auth

import (
	"context"
)

// AuthorizationCheck asks whether the session's member may perform an action (§6.6).
type AuthorizationCheck struct {
	OrganizationID string
	ResourceID     string
	Action         string
}

// Verdict is the answer to an AuthorizationCheck.
type Verdict struct {
	Authorized    bool
	GrantingRoles []string
}

// AuthenticateSessionInput is a sessions authenticate request.
type AuthenticateSessionInput struct {
	SessionToken string
	SessionJWT   string
	SessionOptions
	AuthorizationCheck *AuthorizationCheck
}

// SessionAuthenticated is a checked session with a fresh JWT.
type SessionAuthenticated struct {
	Authenticated
	Verdict *Verdict
}

// AuthenticateSession checks a session by token or JWT, optionally extends it or merges claims,
// and mints a fresh JWT.
func (s *Service) AuthenticateSession(ctx context.Context, projectID string, in AuthenticateSessionInput) (SessionAuthenticated, error) {
	opts, err := in.SessionOptions.validate()
	if err != nil {
		return SessionAuthenticated{}, err
	}
	if ac := in.AuthorizationCheck; ac != nil && (ac.OrganizationID == "" || ac.ResourceID == "" || ac.Action == "") {
		return SessionAuthenticated{}, ErrBadRequest
	}
	switch (SessionArgs{SessionToken: in.SessionToken, SessionJWT: in.SessionJWT}).count() {
	case 0:
		return SessionAuthenticated{}, ErrNoSessionArguments
	case 2:
		return SessionAuthenticated{}, ErrTooManySessionArguments
	}
	ps, err := s.project(ctx, projectID)
	if err != nil {
		return SessionAuthenticated{}, err
	}
	now := s.now()
	sess, err := s.sessionFromArgs(ctx, ps, in.SessionToken, in.SessionJWT, now)
	if err != nil {
		return SessionAuthenticated{}, err
	}
	org, err := s.store.Organization(ctx, projectID, sess.OrganizationID)
	if err != nil {
		return SessionAuthenticated{}, sessionGone(err)
	}
	m, err := s.member(ctx, projectID, org.ID, sess.MemberID)
	if err != nil {
		return SessionAuthenticated{}, sessionGone(err)
	}
	var verdict *Verdict
	if ac := in.AuthorizationCheck; ac != nil {
		target, err := s.GetOrganization(ctx, projectID, ac.OrganizationID)
		if err != nil && !isType(err, ErrOrganizationNotFound) {
			return SessionAuthenticated{}, err
		}
		if err != nil || target.ID != org.ID {
			return SessionAuthenticated{}, ErrSessionTenancy
		}
		// stytch_admin is sparekey's only grant: every action on every resource.
		if !m.IsAdmin() {
			return SessionAuthenticated{}, ErrSessionAuthorization
		}
		verdict = &Verdict{Authorized: true, GrantingRoles: []string{RoleAdmin}}
	}
	if opts.claims != nil {
		if err := checkClaimsSize(mergeClaims(sess.CustomClaims, opts.claims)); err != nil {
			return SessionAuthenticated{}, err
		}
	}
	sess, err = s.store.UpdateSession(ctx, projectID, sess.ID, now, func(x *Session) error {
		if opts.claims != nil {
			merged := mergeClaims(x.CustomClaims, opts.claims)
			if err := checkClaimsSize(merged); err != nil {
				return err
			}
			x.CustomClaims = merged
		}
		if opts.duration != 0 {
			x.ExpiresAt = now.Add(opts.duration)
		}
		x.LastAccessedAt = now
		return nil
	})
	if err != nil {
		return SessionAuthenticated{}, err
	}
	jwt, err := s.mintJWT(ctx, ps, &sess, &m, &org, now)
	if err != nil {
		return SessionAuthenticated{}, err
	}
	return SessionAuthenticated{
		Authenticated: Authenticated{
			Organization:        org,
			Member:              m,
			Session:             &sess,
			SessionToken:        in.SessionToken, // "" when named by JWT: only its digest is stored
			SessionJWT:          jwt,
			MemberAuthenticated: true,
		},
		Verdict: verdict,
	}, nil
}

// sessionGone maps the disappearance of a session's member or organization (deleted between two
// reads) to the session's own absence.
func sessionGone(err error) error {
	if isType(err, ErrMemberNotFound) || isType(err, ErrOrganizationNotFound) {
		return ErrSessionNotFound
	}
	return err
}

// MemberSessions is a member's live sessions.
type MemberSessions struct {
	Organization Organization
	Member       Member
	Sessions     []Session
}

// ListSessions returns a member's live sessions, oldest first.
func (s *Service) ListSessions(ctx context.Context, projectID string, ref MemberRef) (MemberSessions, error) {
	if err := ref.validate(); err != nil {
		return MemberSessions{}, err
	}
	ps, err := s.project(ctx, projectID)
	if err != nil {
		return MemberSessions{}, err
	}
	org, m, err := s.orgMember(ctx, ps, ref.OrganizationID, ref.MemberID)
	if err != nil {
		return MemberSessions{}, err
	}
	sessions, err := s.store.Sessions(ctx, projectID, m.ID, s.now())
	if err != nil {
		return MemberSessions{}, err
	}
	return MemberSessions{Organization: org, Member: m, Sessions: sessions}, nil
}

// RevokeInput names what to revoke: exactly one field is set.
type RevokeInput struct {
	MemberSessionID string
	SessionToken    string
	SessionJWT      string
	MemberID        string // canonical id: revokes every session of the member
}

// RevokeSession ends one session, or all of a member's. JWTs already issued keep passing local
// verification until their exp, at most five minutes later.
func (s *Service) RevokeSession(ctx context.Context, projectID string, in RevokeInput, actor Actor) error {
	n := 0
	for _, v := range []string{in.MemberSessionID, in.SessionToken, in.SessionJWT, in.MemberID} {
		if v != "" {
			n++
		}
	}
	switch n {
	case 0:
		return ErrNoRevokeArguments
	case 1:
	default:
		return ErrTooManyRevokeArguments
	}
	ps, err := s.project(ctx, projectID)
	if err != nil {
		return err
	}
	now := s.now()
	if in.MemberID != "" {
		m, err := s.store.Member(ctx, projectID, "", in.MemberID)
		if err != nil {
			return err
		}
		if err := s.authorizeActor(ctx, projectID, m.OrganizationID, actor); err != nil {
			return err
		}
		return s.store.DeleteMemberSessions(ctx, projectID, m.ID, now, func(revoked []string) []Event {
			events := make([]Event, len(revoked))
			for i, id := range revoked {
				events[i] = memberEvent(ctx, EventSessionRevoked, now, &m, map[string]any{"member_session_id": id, "by": "member_id"})
			}
			return events
		})
	}
	var (
		sess Session
		by   string
	)
	switch {
	case in.MemberSessionID != "":
		sess, err = s.store.Session(ctx, projectID, in.MemberSessionID, now)
		by = "member_session_id"
	case in.SessionToken != "":
		sess, err = s.sessionFromArgs(ctx, ps, in.SessionToken, "", now)
		by = "session_token"
	default:
		sess, err = s.sessionFromArgs(ctx, ps, "", in.SessionJWT, now)
		by = "session_jwt"
	}
	if err != nil {
		return err
	}
	if err := s.authorizeActor(ctx, projectID, sess.OrganizationID, actor); err != nil {
		return err
	}
	revoked := newEvent(ctx, EventSessionRevoked, now, projectID, sess.OrganizationID, sess.MemberID, map[string]any{"member_session_id": sess.ID, "by": by})
	return s.store.DeleteSession(ctx, projectID, sess.ID, now, revoked)
}

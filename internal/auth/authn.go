package auth

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/sparekey/sparekey/internal/secret"
)

// SessionArgs name the session a call builds on: at most one of them is meaningful. "" means
// absent (§2: an empty token argument is no argument).
type SessionArgs struct {
	IntermediateSessionToken string
	SessionToken             string
	SessionJWT               string
}

func (a SessionArgs) count() int {
	n := 0
	for _, v := range []string{a.IntermediateSessionToken, a.SessionToken, a.SessionJWT} {
		if v != "" {
			n++
		}
	}
	return n
}

// SessionOptions shape the session a successful call creates or extends.
type SessionOptions struct {
	// DurationMinutes is the JSON number as sent, nil when absent; it must be an integer.
	DurationMinutes *json.Number
	// CustomClaims is the patch to merge into the session's claims, nil when absent.
	CustomClaims map[string]any
}

// Session duration bounds of the contract, in minutes (527040 is a leap year).
const (
	minSessionMinutes = 5
	maxSessionMinutes = 527040
)

// sessionOptions are validated SessionOptions.
type sessionOptions struct {
	duration time.Duration // 0 when absent
	claims   map[string]any
}

func (o SessionOptions) validate() (sessionOptions, error) {
	var out sessionOptions
	if o.DurationMinutes != nil {
		n, err := o.DurationMinutes.Int64()
		if err != nil || n < minSessionMinutes || n > maxSessionMinutes {
			return out, ErrInvalidSessionDuration
		}
		out.duration = time.Duration(n) * time.Minute
	}
	if err := checkClaimKeys(o.CustomClaims); err != nil {
		return out, err
	}
	out.claims = o.CustomClaims
	return out, nil
}

// sessionBase is what a call's session argument resolved to.
type sessionBase struct {
	ist      *IntermediateSession // an intermediate session to consume or extend
	istToken string
	session  *Session // a live session to extend
	token    string   // the session token sent, echoed back; "" when named by JWT
}

// readAhead is an intermediate session a call read ahead with its other rows (Store.CodeOwner):
// when done, ist is the session of the token sent, nil when there is none.
type readAhead struct {
	ist  *IntermediateSession
	done bool
}

// resolveSessionArgs checks the one session argument sent (if any) against the organization and
// member of the call (§6.0.1). It reads only; nothing is consumed until the call succeeds.
func (s *Service) resolveSessionArgs(ctx context.Context, ps *projectState, org *Organization, m *Member, a SessionArgs, now time.Time, ahead readAhead) (sessionBase, error) {
	switch {
	case a.IntermediateSessionToken != "":
		if !secret.IsToken(a.IntermediateSessionToken) {
			return sessionBase{}, ErrISTNotFound
		}
		var ist IntermediateSession
		switch {
		case ahead.done && ahead.ist == nil:
			return sessionBase{}, ErrISTNotFound
		case ahead.done:
			ist = *ahead.ist
		default:
			var err error
			if ist, err = s.store.IntermediateSession(ctx, ps.Project.ID, secret.Digest(a.IntermediateSessionToken), now); err != nil {
				return sessionBase{}, err
			}
		}
		if ist.OrganizationID != org.ID {
			return sessionBase{}, ErrISTForOtherOrganization
		}
		if ist.MemberID != m.ID {
			return sessionBase{}, ErrSessionMemberMismatch
		}
		return sessionBase{ist: &ist, istToken: a.IntermediateSessionToken}, nil
	case a.SessionToken != "" || a.SessionJWT != "":
		sess, err := s.sessionFromArgs(ctx, ps, a.SessionToken, a.SessionJWT, now)
		if err != nil {
			return sessionBase{}, err
		}
		// A session of another organization is necessarily another member's.
		if sess.MemberID != m.ID {
			return sessionBase{}, ErrSessionMemberMismatch
		}
		return sessionBase{session: &sess, token: a.SessionToken}, nil
	}
	return sessionBase{}, nil
}

// sessionFromArgs finds the live session named by a token or, when token is "", a JWT.
func (s *Service) sessionFromArgs(ctx context.Context, ps *projectState, token, jwt string, now time.Time) (Session, error) {
	if token != "" {
		if !secret.IsToken(token) {
			return Session{}, ErrSessionNotFound
		}
		return s.store.SessionByToken(ctx, ps.Project.ID, secret.Digest(token), now)
	}
	id, err := s.verifySessionJWT(ctx, ps, jwt, now)
	if err != nil {
		return Session{}, err
	}
	return s.store.Session(ctx, ps.Project.ID, id, now)
}

// checkMergedClaims refuses, before anything is consumed, claims that would grow too large once
// merged into the session the call lands in.
func (b sessionBase) checkMergedClaims(o sessionOptions) error {
	if o.claims == nil {
		return nil
	}
	var base map[string]any
	if b.session != nil {
		base = b.session.CustomClaims
	}
	return checkClaimsSize(mergeClaims(base, o.claims))
}

// landing is a Completion's session part with the token the caller gets back.
type landing struct {
	completion Completion
	token      string
	factor     string // the factor type the call adds
}

// recordEvents sets the Completion's Events: member.unlocked when ApplyMember settled a lapsed
// lock, the call's own events (given the outcome), and session.created when the call started a
// session rather than extending one. Each is judged inside the transaction, so it is exact even
// when concurrent calls race for the same member.
func (l *landing) recordEvents(ctx context.Context, own func(done *Completed) []Event) {
	now, startsSession, factor := l.completion.Now, l.completion.SessionID == "", l.factor
	l.completion.Events = func(before Member, done Completed) []Event {
		var events []Event
		if lapsedLock(&before, now) && done.Member.LockExpiresAt.IsZero() {
			events = unlockedEvents(ctx, &before, now)
		}
		if own != nil {
			events = append(events, own(&done)...)
		}
		if startsSession {
			events = append(events, memberEvent(ctx, EventSessionCreated, now, &done.Member, map[string]any{
				"member_session_id": done.Session.ID,
				"factor":            factor,
			}))
		}
		return events
	}
}

// land prepares the session side of a successful authentication: a new session (from the
// intermediate session's factors, if one was sent) or the sent session, gaining factor.
func (s *Service) land(ps *projectState, org *Organization, m *Member, b sessionBase, factor Factor, o sessionOptions, now time.Time) landing {
	c := Completion{ProjectID: ps.Project.ID, MemberID: m.ID, Now: now}
	var token string
	switch {
	case b.session != nil:
		c.SessionID = b.session.ID
		token = b.token
	default:
		if b.ist != nil {
			c.ConsumeIST = b.ist.TokenDigest
		}
		token = secret.NewToken()
		c.NewSession = Session{
			ID:             newID(kindSession),
			ProjectID:      ps.Project.ID,
			OrganizationID: org.ID,
			MemberID:       m.ID,
			TokenDigest:    secret.Digest(token),
			StartedAt:      now,
			LastAccessedAt: now,
			ExpiresAt:      now.Add(defaultSessionDuration),
			CustomClaims:   map[string]any{},
		}
	}
	c.ApplySession = func(sess *Session) error {
		sess.Factors = addFactor(sess.Factors, factor)
		if o.claims != nil {
			merged := mergeClaims(sess.CustomClaims, o.claims)
			if err := checkClaimsSize(merged); err != nil {
				return err
			}
			sess.CustomClaims = merged
		}
		if o.duration != 0 {
			sess.ExpiresAt = now.Add(o.duration)
		}
		sess.LastAccessedAt = now
		return nil
	}
	return landing{completion: c, token: token, factor: factor.Type}
}

// mfaPassed is the member side of a successful MFA factor: the failure counter starts over,
// and under REQUIRED_FOR_ALL the member counts as enrolled.
func mfaPassed(org *Organization, now time.Time) func(*Member) error {
	return func(m *Member) error {
		m.settleLock(now)
		m.FailedAttempts = 0
		if org.MFAPolicy == MFAPolicyRequiredForAll && !m.MFAEnrolled {
			m.MFAEnrolled = true
			m.UpdatedAt = now
		}
		return nil
	}
}

// failAttempt counts a failed MFA attempt and returns what the caller is told: rejected, or
// the lock error when this failure locked the member (or a concurrent one already had). The
// count and its events are one write under the member's row lock: failed builds the event of
// the counted failure from the member after it, member.locked follows when it reached the
// threshold, member.unlocked precedes when it settled a lapsed lock. A failure arriving while a
// concurrent one has just locked the member is not counted and records no failure event; alarm
// (the replay alarm) is recorded either way.
func (s *Service) failAttempt(ctx context.Context, ps *projectState, m *Member, now time.Time, rejected *Error, failed func(after *Member) Event, alarm ...Event) error {
	after, err := s.store.UpdateMember(ctx, ps.Project.ID, m.ID, func(x *Member) ([]Event, error) {
		events := append(unlockedEvents(ctx, x, now), alarm...)
		x.settleLock(now)
		if x.Locked(now) {
			return events, nil
		}
		lockedNow := x.RecordFailure(now, s.cfg.Lock)
		events = append(events, failed(x))
		if lockedNow {
			events = append(events, memberEvent(ctx, EventMemberLocked, now, x, map[string]any{
				"lock_expires_at": eventTime(x.LockExpiresAt),
				"failed_attempts": x.FailedAttempts,
			}))
		}
		return events, nil
	})
	if err != nil {
		return err
	}
	if lerr := after.LockError(now); lerr != nil {
		return lerr
	}
	return rejected
}

// Authenticated is the outcome of a call that authenticates a member.
type Authenticated struct {
	Organization Organization
	Member       Member
	// Session is nil when the call ended without one (MFA still required).
	Session      *Session
	SessionToken string
	SessionJWT   string
	// RecoveryCodesRemaining is set by recover.
	RecoveryCodesRemaining int
	// The password branch: whether a session was granted, and the intermediate session when not.
	MemberAuthenticated      bool
	IntermediateSessionToken string
	ISTExpiresAt             time.Time
}

// complete lands a prepared Completion and mints the JWT outside the transaction: signing is the
// most expensive step and must not hold the single SQLite writer.
func (s *Service) complete(ctx context.Context, ps *projectState, org *Organization, l landing) (Authenticated, error) {
	done, err := s.store.Complete(ctx, l.completion)
	if err != nil {
		return Authenticated{}, err
	}
	done.Member.settleLock(l.completion.Now)
	jwt, err := s.mintJWT(ctx, ps, &done.Session, &done.Member, org, l.completion.Now)
	if err != nil {
		return Authenticated{}, err
	}
	return Authenticated{
		Organization:           *org,
		Member:                 done.Member,
		Session:                &done.Session,
		SessionToken:           l.token,
		SessionJWT:             jwt,
		RecoveryCodesRemaining: done.RemainingCodes,
		MemberAuthenticated:    true,
	}, nil
}

// isType reports whether err is the domain error e.
func isType(err error, e *Error) bool { return errors.Is(err, e) }

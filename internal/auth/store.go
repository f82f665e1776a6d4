package auth

import (
	"context"
	"slices"
	"time"
)

// Store is sparekey's persistence. Every method is one transaction, scoped to one project, and
// returns the domain errors named in its comment; any other error is a fault (500).
//
// Read-modify-write methods take an apply function: the store loads the current row inside its
// transaction, apply (a pure, cheap domain function) changes it or refuses with an error, and the
// store writes the result. Rules stay in the domain; atomicity stays in the store. apply may run
// more than once when a backend retries a transaction, so it must not have side effects.
//
// Audit events travel with the action they record: a write method takes the events of its
// action (as events, or from its apply or Events function) and inserts them in its own
// transaction, so they commit with the action or not at all. A method that refuses (returns an
// error) records nothing. Events are never changed or deleted by any method, cascades included.
type Store interface {
	// CreateProject stores a project together with its first signing key.
	CreateProject(ctx context.Context, p Project, key SigningKey) error
	// Project returns a project by id, or ErrProjectNotFound.
	Project(ctx context.Context, id string) (Project, error)
	// Projects returns every project, oldest first.
	Projects(ctx context.Context) ([]Project, error)
	// SigningKeys returns the project's signing keys, retired ones included, newest
	// (created_at, then kid) first.
	SigningKeys(ctx context.Context, projectID string) ([]SigningKey, error)
	// AddSigningKey stores a new key of key.ProjectID and, in the same transaction, sets
	// RetiresAt to retireAt on each of the project's other keys that has none yet, and deletes
	// the project's keys that retired before key.CreatedAt (they neither sign nor verify, and
	// their private keys are better gone); ErrProjectNotFound.
	AddSigningKey(ctx context.Context, key SigningKey, retireAt time.Time) error

	// SealedValues returns up to limit values of a sealed column (NULLs skipped), ordered by
	// their row's key, starting after the row key after ("" for the first page). It spans every
	// project: it serves master-key rotation, which is not scoped by project. An unknown column
	// is a fault.
	SealedValues(ctx context.Context, column SealedColumn, after string, limit int) ([]SealedValue, error)
	// CountSealedValues counts the column's values (NULLs skipped).
	CountSealedValues(ctx context.Context, column SealedColumn) (int, error)
	// ReplaceSealedValues writes each replacement's New into its row only where the column still
	// holds its Old, all in one transaction, and returns how many rows it changed: a value
	// changed or deleted since it was read is left as it is, never overwritten.
	ReplaceSealedValues(ctx context.Context, column SealedColumn, rs []SealedReplacement) (int, error)

	// CreateOrganization stores a new organization, or returns ErrOrganizationSlugUsed or
	// ErrOrganizationExtIDUsed.
	CreateOrganization(ctx context.Context, o Organization) error
	// Organization resolves ref as an organization id, then a slug, then an external id, or
	// returns ErrOrganizationNotFound.
	Organization(ctx context.Context, projectID, ref string) (Organization, error)
	// UpdateOrganization applies apply to the organization with this canonical id: errors
	// ErrOrganizationNotFound, ErrOrganizationSlugUsed, ErrOrganizationExtIDUsed, or apply's.
	UpdateOrganization(ctx context.Context, projectID, id string, apply func(*Organization) error) (Organization, error)
	// DeleteOrganization removes an organization with its members, sessions, intermediate
	// sessions, TOTP registrations, codes and passwords; ErrOrganizationNotFound.
	DeleteOrganization(ctx context.Context, projectID, id string) error
	// SearchOrganizations returns one page of the organizations matching q.
	SearchOrganizations(ctx context.Context, projectID string, q OrganizationQuery) (OrganizationPage, error)

	// CreateMember stores a new member (and its imported password, if any), or returns
	// ErrOrganizationNotFound, ErrDuplicateMemberEmail or ErrDuplicateMemberExtID.
	CreateMember(ctx context.Context, m Member, pw *Password) error
	// Member resolves ref inside the organization as a member id, then an external id, or
	// returns ErrMemberNotFound. With organizationID "" it takes canonical member ids only,
	// in any organization of the project.
	Member(ctx context.Context, projectID, organizationID, ref string) (Member, error)
	// MemberByEmail finds a member by lowercase address, or returns ErrMemberNotFound.
	MemberByEmail(ctx context.Context, projectID, organizationID, email string) (Member, error)
	// UpdateMember applies apply to the member and records the events apply returns: errors
	// ErrMemberNotFound, ErrDuplicateMemberEmail, ErrDuplicateMemberExtID, or apply's. A failed
	// attempt is counted this way too (apply calls Member.RecordFailure), under the member's row
	// lock, so failures arriving at once on many replicas add up exactly.
	UpdateMember(ctx context.Context, projectID, memberID string, apply func(*Member) ([]Event, error)) (Member, error)
	// DeleteMember removes a member with its sessions, intermediate sessions, registration,
	// codes and password; ErrMemberNotFound.
	DeleteMember(ctx context.Context, projectID, memberID string) error
	// SetPassword sets or replaces the member's password; ErrMemberNotFound.
	SetPassword(ctx context.Context, projectID string, pw Password) error
	// Password returns the member's password, or ErrNoPassword.
	Password(ctx context.Context, projectID, memberID string) (Password, error)

	// CreateTOTP stores a registration and its recovery codes, and records events, or returns
	// ErrMemberNotFound or ErrActiveTOTPExists.
	CreateTOTP(ctx context.Context, projectID string, reg TOTPRegistration, codes []RecoveryCode, events ...Event) error
	// TOTP returns the member's registration, or ErrTOTPNotFound.
	TOTP(ctx context.Context, projectID, memberID string) (TOTPRegistration, error)
	// DeleteTOTP removes the member's registration with all its codes, applies apply to the
	// member (which apply sees as it was before, TOTPRegistrationID included) and records the
	// events apply returns, in one transaction; ErrMemberNotFound, ErrTOTPNotFound, or apply's.
	DeleteTOTP(ctx context.Context, projectID, memberID string, apply func(*Member) ([]Event, error)) (Member, error)
	// RecoveryCodes returns every code of the registration, used or not, in issue order, with
	// the sealed set they belong to, read in one snapshot: a rotate committing meanwhile must not
	// pair the old set's display strings with the new set's rows. No registration: nothing.
	RecoveryCodes(ctx context.Context, projectID, registrationID string) (sealedSet []byte, codes []RecoveryCode, err error)
	// FindRecoveryCode returns the registration's code with this MAC, used or not, or
	// ErrRecoveryCodeRejected when there is none.
	FindRecoveryCode(ctx context.Context, projectID, registrationID string, mac []byte) (RecoveryCode, error)
	// CodeOwner reads, in one snapshot and in one go, what the recovery-code calls (GET, rotate,
	// recover) start from: the organization and member q names, the member's registration, and
	// what else q asks for. ErrOrganizationNotFound, ErrMemberNotFound; a member without a
	// registration is no error (Registration is nil).
	CodeOwner(ctx context.Context, projectID string, q CodeOwnerQuery) (CodeOwner, error)
	// RecordedCodeOwner reads as CodeOwner does and records the events record returns for
	// what it read, in one transaction. record runs inside it (and may run more than once);
	// an error of the read or of record records nothing and is returned.
	RecordedCodeOwner(ctx context.Context, projectID string, q CodeOwnerQuery, record func(CodeOwner) ([]Event, error)) (CodeOwner, error)
	// ReplaceRecoveryCodes swaps the registration's whole set, used and unused codes alike, for
	// a new one (sealedSet nil stores no sealed copy) and records events, in one transaction;
	// ErrTOTPNotFound.
	ReplaceRecoveryCodes(ctx context.Context, projectID, registrationID string, sealedSet []byte, codes []RecoveryCode, events ...Event) error

	// CreateIntermediateSession stores a new intermediate session and records events.
	CreateIntermediateSession(ctx context.Context, ist IntermediateSession, events ...Event) error
	// IntermediateSession returns an unexpired intermediate session by token digest, or
	// ErrISTNotFound.
	IntermediateSession(ctx context.Context, projectID string, digest []byte, now time.Time) (IntermediateSession, error)
	// UpdateIntermediateSession applies apply to an unexpired intermediate session and records
	// events; ErrISTNotFound, or apply's.
	UpdateIntermediateSession(ctx context.Context, projectID string, digest []byte, now time.Time, apply func(*IntermediateSession) error, events ...Event) (IntermediateSession, error)

	// Session returns a live session by id, or ErrSessionNotFound.
	Session(ctx context.Context, projectID, id string, now time.Time) (Session, error)
	// SessionByToken returns a live session by token digest, or ErrSessionNotFound.
	SessionByToken(ctx context.Context, projectID string, digest []byte, now time.Time) (Session, error)
	// Sessions returns the member's live sessions, oldest started_at first.
	Sessions(ctx context.Context, projectID, memberID string, now time.Time) ([]Session, error)
	// UpdateSession applies apply to a live session; ErrSessionNotFound.
	UpdateSession(ctx context.Context, projectID, id string, now time.Time, apply func(*Session) error) (Session, error)
	// DeleteSession revokes a live session and records events; ErrSessionNotFound.
	DeleteSession(ctx context.Context, projectID, id string, now time.Time, events ...Event) error
	// DeleteMemberSessions revokes every session of the member, expired ones included, and
	// records the events that events (when not nil) returns for the ids of the sessions that
	// were live at now, oldest started_at first (it is called, possibly with none, inside the
	// transaction, and may run more than once). No session is no error.
	DeleteMemberSessions(ctx context.Context, projectID, memberID string, now time.Time, events func(revoked []string) []Event) error

	// Complete lands a successful authentication: see Completion.
	Complete(ctx context.Context, c Completion) (Completed, error)

	// RecordEvents records events of an action that writes nothing else (a refused password),
	// in one transaction: all of them or none.
	RecordEvents(ctx context.Context, events ...Event) error
	// Events returns one page of the project's events matching q, newest first (time, then id,
	// descending), and whether more follow.
	Events(ctx context.Context, projectID string, q EventQuery) (EventPage, error)

	// Webhooks. Inserting an event, by any method above, also writes in the same transaction one
	// pending delivery, due at the event's time, for each webhook of the event's project whose
	// EventTypes are empty or hold the event's type (the transactional outbox): a delivery exists
	// exactly when its event does.

	// CreateWebhook stores a webhook, or returns ErrTooManyWebhooks when the project already has
	// max of them (counted under a lock, so concurrent creations cannot pass it), and records
	// events, in one transaction. The events go to the project's other webhooks, not to w.
	CreateWebhook(ctx context.Context, w Webhook, max int, events ...Event) error
	// Webhooks returns the project's webhooks, oldest first (created_at, then id).
	Webhooks(ctx context.Context, projectID string) ([]Webhook, error)
	// DeleteWebhook removes a webhook with all its deliveries, so none pending is attempted
	// again, and records events, in one transaction; ErrWebhookNotFound (and no events).
	DeleteWebhook(ctx context.Context, projectID, id string, events ...Event) error
	// ClaimWebhookDeliveries leases, under claim until leaseUntil, up to limit deliveries of any
	// project that are pending, due (next attempt at or before now) and not leased (never, or
	// until at or before now), of webhooks that exist, choosing the earliest due first, and
	// returns them, in no particular order, with their webhook and event. Concurrent callers, on
	// any replica, never get the same delivery while its lease holds.
	ClaimWebhookDeliveries(ctx context.Context, claim string, now, leaseUntil time.Time, limit int) ([]WebhookDelivery, error)
	// FinishWebhookDelivery records an attempt made under a.Claim and ends the lease: delivered
	// or failed (finished at a.At), retry (pending again, due at a.NextAttemptAt), each counting
	// one attempt with its status and error; released (pending, due as before, not counted).
	// ErrWebhookClaimLost when the delivery is not pending under that claim any more.
	FinishWebhookDelivery(ctx context.Context, a WebhookAttempt) error
	// WebhookQueueDepth counts the pending deliveries of every project.
	WebhookQueueDepth(ctx context.Context) (int64, error)
	// PruneWebhookDeliveries deletes the deliveries finished before before and any left of a
	// deleted webhook, and returns how many.
	PruneWebhookDeliveries(ctx context.Context, before time.Time) (int64, error)
	// WebhookDeliveries returns up to limit deliveries of the project's webhook, newest event
	// first (event time, then event id, descending); ErrWebhookNotFound.
	WebhookDeliveries(ctx context.Context, projectID, webhookID string, limit int) ([]WebhookDeliveryStatus, error)

	// DeleteExpired removes sessions and intermediate sessions that ended before now.
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)
	// DeleteEventsBefore removes up to limit of the project's events that happened before
	// before, oldest first, in one transaction, and returns how many. It keeps the events from
	// the project's oldest with a webhook delivery still pending on: the outbox sends them.
	DeleteEventsBefore(ctx context.Context, projectID string, before time.Time, limit int) (int64, error)
}

// Completion is everything a successful authentication changes, applied in one transaction so
// that a code is never spent without its session and a session never exists without its code:
//
//  1. the member must exist and, when RefuseIfLocked, not be locked (else its LockError);
//  2. the proof is spent: SpendRecoveryCode marks that code used if it is still unused (else
//     ErrRecoveryCodeRejected: another request won the race, or a rotate replaced the set);
//     SpendTOTPStep reads the registration under a write lock, marks the step spent with
//     TOTPRegistration.SpendStep and writes LastStep and UnspentSteps back (else
//     ErrTOTPCodeAlreadyUsed: the step was spent before, or by a request that won the race, or
//     the registration is gone). So steps are accepted in whatever order they come, each once;
//  3. the session: with ConsumeIST the intermediate session (of this member, unexpired) is
//     deleted and NewSession starts from its factors (else ErrISTNotFound); with SessionID that
//     live session is loaded (else ErrSessionNotFound); otherwise NewSession as given. Then
//     ApplySession edits it and it is written;
//  4. ApplyMember edits the member, which is written;
//  5. Events, when set, returns the events to record, given the member as step 1 loaded it
//     (before ApplyMember: a lock that ApplyMember settles shows there; a shallow copy, so its
//     maps and slices may be the ones ApplyMember edited) and the state after.
//
// Every function here runs inside the transaction and may run more than once.
type Completion struct {
	ProjectID      string
	MemberID       string
	Now            time.Time
	RefuseIfLocked bool

	SpendRecoveryCode string // code id
	SpendTOTPStep     *TOTPStep

	ConsumeIST   []byte
	SessionID    string
	NewSession   Session
	ApplySession func(*Session) error
	ApplyMember  func(*Member) error
	Events       func(before Member, done Completed) []Event
}

// CodeOwnerQuery names a member the way the recovery-code calls do, and what to read with it.
// Reading it all at once costs one statement where the calls would otherwise make four or five
// round trips, each with its own snapshot.
type CodeOwnerQuery struct {
	// OrganizationRef is resolved as Organization resolves it: an id, then a slug, then an
	// external id. MemberRef then as Member resolves it inside that organization.
	OrganizationRef string
	MemberRef       string
	// UnusedCodes asks for the positions of the registration's unused codes (GET), read in the
	// same snapshot as the registration's sealed set, so the two always belong together.
	UnusedCodes bool
	// CodeMAC, when not nil, asks for the registration's code with this MAC, used or not.
	CodeMAC []byte
	// ISTDigest, when not nil, asks for the project's intermediate session with this token
	// digest, unexpired at Now, whoever's it is (the caller judges that).
	ISTDigest []byte
	Now       time.Time
}

// CodeOwner is what Store.CodeOwner read.
type CodeOwner struct {
	Organization Organization
	Member       Member // as stored: a lapsed lock is not settled
	Registration *TOTPRegistration
	// UnusedPositions lists, ascending, the positions of the unused codes (with UnusedCodes).
	UnusedPositions []int
	// Code is the code with CodeMAC, or nil when the registration has none (or there is no
	// registration).
	Code *RecoveryCode
	// IST is the intermediate session with ISTDigest, or nil when there is none.
	IST *IntermediateSession
}

// TOTPStep is a TOTP time step to accept for a registration, at most once.
type TOTPStep struct {
	RegistrationID string
	Step           int64
}

// Completed is the state after a Completion.
type Completed struct {
	Session Session
	Member  Member
	// RemainingCodes counts the registration's unused codes after a recovery code was spent.
	RemainingCodes int
}

// OrganizationQuery selects a page of organizations; Filters are already validated.
type OrganizationQuery struct {
	Operator string // "AND" or "OR"
	Filters  []OrganizationFilter
	Limit    int
	After    *OrganizationCursor
}

// OrganizationFilter is one search operand. Values holds the list filters' items; Value the
// fuzzy filters' substring. Both are folded with FoldCase, as are the stored values they are
// compared with (member emails, email domains, and the organization name through the copy the
// store keeps), so stores compare exactly and never rely on their database's lower(). MatchAll / MatchNone stand for filters whose answer is fixed
// (sparekey has no SSO connections).
type OrganizationFilter struct {
	Name   string
	Values []string
	Value  string
}

// FilterGroup is the operands of one search filter name, in request order: what a store turns
// into one condition, so a statement does not grow with the number of operands.
type FilterGroup struct {
	Name   string
	Lists  [][]string // a list filter's operands
	Values []string   // a substring filter's operands
}

// GroupFilters groups filters by name, in the order each name first appears.
func GroupFilters(filters []OrganizationFilter) []*FilterGroup {
	var groups []*FilterGroup
	byName := map[string]*FilterGroup{}
	for _, f := range filters {
		g := byName[f.Name]
		if g == nil {
			g = &FilterGroup{Name: f.Name}
			byName[f.Name] = g
			groups = append(groups, g)
		}
		g.Lists = append(g.Lists, f.Values)
		g.Values = append(g.Values, f.Value)
	}
	return groups
}

// Union is every value of the group's lists that kept keeps (a store drops there what it cannot
// bind, and so what cannot match).
func (g *FilterGroup) Union(kept func([]string) []string) []string {
	var out []string
	for _, l := range g.Lists {
		out = append(out, kept(l)...)
	}
	return out
}

// Intersection is the values in every list of the group that kept keeps.
func (g *FilterGroup) Intersection(kept func([]string) []string) []string {
	out := kept(g.Lists[0])
	for _, l := range g.Lists[1:] {
		in := make(map[string]bool, len(l))
		for _, v := range l {
			in[v] = true
		}
		out = slices.DeleteFunc(out, func(v string) bool { return !in[v] })
	}
	return out
}

// Search filter names the store understands, beyond the fixed-answer ones.
const (
	FilterOrganizationIDs     = "organization_ids"
	FilterOrganizationSlugs   = "organization_slugs"
	FilterSlugFuzzy           = "organization_slug_fuzzy"
	FilterNameFuzzy           = "organization_name_fuzzy"
	FilterMemberEmails        = "member_emails"
	FilterMemberEmailFuzzy    = "member_email_fuzzy"
	FilterAllowedDomains      = "allowed_domains"
	FilterClaimedEmailDomains = "claimed_email_domains"
	FilterAllowedDomainFuzzy  = "allowed_domain_fuzzy"
	FilterMatchAll            = "match_all"
	FilterMatchNone           = "match_none"
)

// OrganizationCursor is the position after the last organization of a page, in result order.
type OrganizationCursor struct {
	CreatedAt time.Time
	ID        string
}

// OrganizationPage is one page of search results.
type OrganizationPage struct {
	Organizations []Organization
	Total         int
	// More reports whether organizations follow this page.
	More bool
}

package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Event is one entry of the audit trail. The store writes it in the transaction of the action it
// records, so an event exists exactly when its action happened: a refused or rolled-back action
// leaves none. Events outlive what they name (members, organizations): they are the record.
type Event struct {
	ID             string // "event-test-<uuid>"; the uuid is version 7, so ids sort in creation order
	Type           string // one of the Event* constants
	Time           time.Time
	ProjectID      string
	OrganizationID string // "" when the action concerns no organization
	MemberID       string // "" when the action concerns no known member
	// Who asked, as the API layer saw the request (WithCaller); "" outside a request.
	RequestID string
	ClientIP  string
	UserAgent string
	// Data holds the type's details (see each constant). It never holds a code, token, secret,
	// password, hash or TOTP secret. Stores keep it as a JSON object: read back, numbers are
	// float64 and times RFC 3339 strings.
	Data map[string]any
}

// Event types, with when each is written and the keys of its Data.
const (
	// EventRecoveryCodesIssued: TOTP create or migrate issued a set.
	// {"totp_registration_id", "count", "source": "totp_create"|"totp_migrate", "imported": bool}
	EventRecoveryCodesIssued = "recovery_codes.issued"
	// EventRecoveryCodesRotated: rotate replaced the set. {"totp_registration_id", "count"}
	EventRecoveryCodesRotated = "recovery_codes.rotated"
	// EventRecoveryCodesRead: GET showed the unused codes. {"totp_registration_id", "count"}
	EventRecoveryCodesRead = "recovery_codes.read"
	// EventRecoveryCodeUsed: recover spent a code.
	// {"totp_recovery_code_id", "remaining", "member_session_id"}
	EventRecoveryCodeUsed = "recovery_code.used"
	// EventRecoveryCodeFailed: a counted failed recover.
	// {"reason": "wrong_code"|"replayed"|"lost_race", "failed_attempts"}
	EventRecoveryCodeFailed = "recovery_code.failed"
	// EventRecoveryCodeReplayed: a code this member already spent was presented again (the caller
	// gets the answer of a wrong code). {"totp_recovery_code_id", "used_at"}
	EventRecoveryCodeReplayed = "recovery_code.replayed"
	// EventRecoveryCodesLow: a use left 0 < remaining <= Config.LowCodesThreshold.
	// {"remaining", "threshold"}
	EventRecoveryCodesLow = "recovery_codes.low"
	// EventRecoveryCodesExhausted: a use left no unused code. {"remaining": 0}
	EventRecoveryCodesExhausted = "recovery_codes.exhausted"
	// EventTOTPEnrolled: TOTP create or migrate registered an app.
	// {"totp_registration_id", "source": "totp_create"|"totp_migrate"}
	EventTOTPEnrolled = "totp.enrolled"
	// EventTOTPAuthenticated: TOTP authenticate accepted a code.
	// {"totp_registration_id", "member_session_id"}
	EventTOTPAuthenticated = "totp.authenticated"
	// EventTOTPDeleted: the member's TOTP registration and its codes were deleted.
	// {"totp_registration_id"}
	EventTOTPDeleted = "totp.deleted"
	// EventTOTPFailed: a counted failed TOTP authenticate. {"failed_attempts"}
	EventTOTPFailed = "totp.failed"
	// EventMemberLocked: the failure that reached the lock threshold.
	// {"lock_expires_at", "failed_attempts"}
	EventMemberLocked = "member.locked"
	// EventMemberUnlocked: a write (the next counted failure, or an MFA success) settled a lock
	// that had lapsed. {"lock_expired_at"}
	EventMemberUnlocked = "member.unlocked"
	// EventSessionCreated: a new session (recover, TOTP authenticate or password authenticate).
	// {"member_session_id", "factor": "recovery_codes"|"totp"|"password"}
	EventSessionCreated = "session.created"
	// EventSessionRevoked: one per live session ended by revoke.
	// {"member_session_id", "by": "member_session_id"|"session_token"|"session_jwt"|"member_id"}
	EventSessionRevoked = "session.revoked"
	// EventPasswordAuthenticated: a correct password. {"mfa_required": bool}
	EventPasswordAuthenticated = "password.authenticated"
	// EventPasswordFailed: a password authenticate refused in an existing organization.
	// {"reason": "wrong_password"|"no_password"|"unknown_member"}; MemberID is "" for an
	// unknown address, and the address itself is never recorded (users type passwords into
	// address fields).
	EventPasswordFailed = "password.failed"
	// EventWebhookCreated: a webhook was registered; from then on it receives the project's
	// events, so a registration nobody expected is worth an alarm. No organization or member.
	// {"webhook_id", "url" (scheme, host and path: the query may hold the receiver's token),
	// "event_types" (empty: every type)}
	EventWebhookCreated = "webhook.created"
	// EventWebhookDeleted: a webhook was removed with its pending deliveries. {"webhook_id"}
	EventWebhookDeleted = "webhook.deleted"
)

// EventTypes lists every event type.
var EventTypes = []string{
	EventRecoveryCodesIssued, EventRecoveryCodesRotated, EventRecoveryCodesRead,
	EventRecoveryCodeUsed, EventRecoveryCodeFailed, EventRecoveryCodeReplayed,
	EventRecoveryCodesLow, EventRecoveryCodesExhausted,
	EventTOTPEnrolled, EventTOTPAuthenticated, EventTOTPDeleted, EventTOTPFailed,
	EventMemberLocked, EventMemberUnlocked,
	EventSessionCreated, EventSessionRevoked,
	EventPasswordAuthenticated, EventPasswordFailed,
	EventWebhookCreated, EventWebhookDeleted,
}

// Caller is what the API layer knows of the request behind an action; events carry it.
type Caller struct {
	RequestID string
	ClientIP  string
	UserAgent string
}

type callerKey struct{}

// maxCallerField bounds each Caller field as stored: a User-Agent is the client's to choose.
const maxCallerField = 512

// WithCaller returns ctx carrying c for the events of the actions run under it. The fields are
// made storable on every backend (valid UTF-8, no NUL, at most 512 bytes), so a hostile header
// can never make an action fail.
func WithCaller(ctx context.Context, c Caller) context.Context {
	c.RequestID, c.ClientIP, c.UserAgent = storableText(c.RequestID), storableText(c.ClientIP), storableText(c.UserAgent)
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the Caller that WithCaller put in ctx, or the zero Caller.
func CallerFrom(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}

func storableText(s string) string {
	if !cleanText(s) {
		s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	}
	if len(s) > maxCallerField {
		s = s[:maxCallerField]
		for !utf8.ValidString(s) { // cut back to a rune boundary
			s = s[:len(s)-1]
		}
	}
	return s
}

const kindEvent = "event"

// newEvent builds an event of the action running under ctx. data may be nil.
func newEvent(ctx context.Context, typ string, now time.Time, projectID, organizationID, memberID string, data map[string]any) Event {
	c := CallerFrom(ctx)
	if data == nil {
		data = map[string]any{}
	}
	return Event{
		ID:             kindEvent + "-test-" + uuid.Must(uuid.NewV7()).String(),
		Type:           typ,
		Time:           now,
		ProjectID:      projectID,
		OrganizationID: organizationID,
		MemberID:       memberID,
		RequestID:      c.RequestID,
		ClientIP:       c.ClientIP,
		UserAgent:      c.UserAgent,
		Data:           data,
	}
}

// memberEvent builds an event about m.
func memberEvent(ctx context.Context, typ string, now time.Time, m *Member, data map[string]any) Event {
	return newEvent(ctx, typ, now, m.ProjectID, m.OrganizationID, m.ID, data)
}

// eventTime is how times appear in Data.
func eventTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// lapsedLock reports whether m carries a lock that has ended at now but is still stored.
func lapsedLock(m *Member, now time.Time) bool {
	return !m.LockExpiresAt.IsZero() && !now.Before(m.LockExpiresAt)
}

// unlockedEvents returns member.unlocked when a write at now is about to settle m's lapsed lock.
func unlockedEvents(ctx context.Context, m *Member, now time.Time) []Event {
	if !lapsedLock(m, now) {
		return nil
	}
	return []Event{memberEvent(ctx, EventMemberUnlocked, now, m, map[string]any{"lock_expired_at": eventTime(m.LockExpiresAt)})}
}

// lowCodeEvents is the low-code signal after a use left remaining codes.
func (s *Service) lowCodeEvents(ctx context.Context, m *Member, now time.Time, remaining int) []Event {
	switch {
	case remaining == 0:
		return []Event{memberEvent(ctx, EventRecoveryCodesExhausted, now, m, map[string]any{"remaining": 0})}
	case remaining <= s.cfg.LowCodesThreshold:
		return []Event{memberEvent(ctx, EventRecoveryCodesLow, now, m, map[string]any{"remaining": remaining, "threshold": s.cfg.LowCodesThreshold})}
	}
	return nil
}

// EventQuery selects a page of a project's events, newest first (time, then id, descending).
// Its fields are validated by the Service.
type EventQuery struct {
	Types          []string // any of these; empty means every type
	OrganizationID string   // "" means any
	MemberID       string   // "" means any
	Since          time.Time
	Until          time.Time // Since <= time < Until; a zero bound is no bound
	Limit          int
	// After is the last event of the previous page: this page holds the events that follow it
	// in result order, that is (time, id) < (After.Time, After.ID).
	After *EventCursor
}

// EventCursor is the position of an event in result order.
type EventCursor struct {
	Time time.Time
	ID   string
}

// EventPage is one page of events. Stores fill Events and More; the Service adds NextCursor.
type EventPage struct {
	Events []Event
	// More reports whether events follow this page.
	More bool
	// NextCursor is the opaque cursor of the next page, "" on the last one.
	NextCursor string
}

// ListEventsInput is an events query as the API receives it.
type ListEventsInput struct {
	// Types filters by event type; an item may hold several types separated by commas.
	Types          []string
	OrganizationID string // canonical id; events outlive organizations, so aliases cannot resolve
	MemberID       string // canonical id
	Since          *time.Time
	Until          *time.Time
	Limit          *json.Number
	Cursor         string
}

const (
	defaultEventsLimit = 100
	maxEventsLimit     = 1000
	maxEventFilterID   = 200
)

// ListEvents returns one page of the project's events, newest first. A malformed filter, limit
// or cursor is ErrInvalidRequestValue.
func (s *Service) ListEvents(ctx context.Context, projectID string, in ListEventsInput) (EventPage, error) {
	q := EventQuery{Limit: defaultEventsLimit, OrganizationID: in.OrganizationID, MemberID: in.MemberID}
	seen := map[string]bool{}
	for _, item := range in.Types {
		for _, typ := range strings.Split(item, ",") {
			typ = strings.TrimSpace(typ)
			if typ == "" {
				continue
			}
			if !oneOf(typ, EventTypes...) {
				return EventPage{}, ErrInvalidRequestValue
			}
			if !seen[typ] {
				seen[typ] = true
				q.Types = append(q.Types, typ)
			}
		}
	}
	if !validFilterID(in.OrganizationID, kindOrganization) || !validFilterID(in.MemberID, kindMember) {
		return EventPage{}, ErrInvalidRequestValue
	}
	// Events carry whole seconds: an inclusive lower bound and an exclusive upper bound both
	// round up to the next whole second without changing which events they select.
	if in.Since != nil {
		q.Since = ceilSecond(*in.Since)
	}
	if in.Until != nil {
		q.Until = ceilSecond(*in.Until)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return EventPage{}, ErrInvalidRequestValue
	}
	if in.Limit != nil {
		n, err := in.Limit.Int64()
		if err != nil || n < 1 || n > maxEventsLimit {
			return EventPage{}, ErrInvalidRequestValue
		}
		q.Limit = int(n)
	}
	if in.Cursor != "" {
		c, ok := decodeEventCursor(in.Cursor)
		if !ok {
			return EventPage{}, ErrInvalidRequestValue
		}
		q.After = &c
	}
	page, err := s.store.Events(ctx, projectID, q)
	if err != nil {
		return EventPage{}, err
	}
	if page.Events == nil {
		page.Events = []Event{}
	}
	page.NextCursor = ""
	if page.More && len(page.Events) > 0 {
		last := page.Events[len(page.Events)-1]
		page.NextCursor = encodeEventCursor(EventCursor{Time: last.Time, ID: last.ID})
	}
	return page, nil
}

// validFilterID accepts "" (no filter) or an id shaped like kind's.
func validFilterID(id, kind string) bool {
	return id == "" || strings.HasPrefix(id, kind+"-") && len(id) <= maxEventFilterID && cleanText(id)
}

func ceilSecond(t time.Time) time.Time {
	t = t.UTC()
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}

// An events cursor is opaque to callers: base64url of "<time unix>:<event id>".
func encodeEventCursor(c EventCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.Time.Unix(), 10) + ":" + c.ID))
}

func decodeEventCursor(s string) (EventCursor, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return EventCursor{}, false
	}
	ts, id, ok := strings.Cut(string(raw), ":")
	if !ok || !strings.HasPrefix(id, kindEvent+"-") || len(id) > maxEventFilterID || !cleanText(id) {
		return EventCursor{}, false
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || unix < 0 || unix > maxEventUnix {
		return EventCursor{}, false
	}
	return EventCursor{Time: time.Unix(unix, 0).UTC(), ID: id}, true
}

// maxEventUnix keeps cursor times inside what every backend stores (year 9999).
const maxEventUnix = 253402300799

// eventPruneBatch bounds the events one transaction of PruneEvents deletes, so a store's writer
// is never held for long: the requests waiting for it go in between the batches.
const eventPruneBatch = 5000

// PruneEvents deletes the events older than Config.EventRetention (none when it is 0), project
// by project and batch by batch, and returns how many went. Events a pending webhook delivery
// still needs stay until it settles.
func (s *Service) PruneEvents(ctx context.Context) (int64, error) {
	if s.cfg.EventRetention == 0 {
		return 0, nil
	}
	before := s.now().Add(-s.cfg.EventRetention)
	projects, err := s.store.Projects(ctx)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, p := range projects {
		for {
			n, err := s.store.DeleteEventsBefore(ctx, p.ID, before, eventPruneBatch)
			total += n
			if err != nil {
				return total, err
			}
			if n < eventPruneBatch {
				break
			}
		}
	}
	return total, nil
}

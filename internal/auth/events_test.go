package auth_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/secret"
	"github.com/sparekey/sparekey/internal/store/sqlite"
	"github.com/sparekey/sparekey/internal/store/testdb"
	"github.com/sparekey/sparekey/internal/totp"
)

// The audit trail as the Service writes it, on a real SQLite file: for every event type, one
// event per action, with the action's project, organization, member, time and caller, the
// documented data and no secret; and no event at all when the action is refused or rolls back.

const testPassword = "correct horse battery staple"

// testClock is the Service's clock, moved by the test.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// hookedStore is the real SQLite store. A hook, when set, runs once just before the next call of
// its method, to do through the same store what a concurrent request would do at the worst
// moment; failRecordEvents makes the event writes of RecordEvents and RecordedCodeOwner fail as
// a broken disk would.
type hookedStore struct {
	*sqlite.DB
	beforeComplete, beforeReplace, beforeUpdateMember func()
	failRecordEvents                                  bool
}

func runOnce(hook *func()) {
	if h := *hook; h != nil {
		*hook = nil
		h()
	}
}

func (h *hookedStore) Complete(ctx context.Context, c auth.Completion) (auth.Completed, error) {
	runOnce(&h.beforeComplete)
	return h.DB.Complete(ctx, c)
}

func (h *hookedStore) ReplaceRecoveryCodes(ctx context.Context, projectID, registrationID string, sealedSet []byte, codes []auth.RecoveryCode, events ...auth.Event) error {
	runOnce(&h.beforeReplace)
	return h.DB.ReplaceRecoveryCodes(ctx, projectID, registrationID, sealedSet, codes, events...)
}

func (h *hookedStore) UpdateMember(ctx context.Context, projectID, memberID string, apply func(*auth.Member) ([]auth.Event, error)) (auth.Member, error) {
	runOnce(&h.beforeUpdateMember)
	return h.DB.UpdateMember(ctx, projectID, memberID, apply)
}

var errDiskGone = errors.New("test: the disk is gone")

func (h *hookedStore) RecordEvents(ctx context.Context, events ...auth.Event) error {
	if h.failRecordEvents {
		return errDiskGone
	}
	return h.DB.RecordEvents(ctx, events...)
}

func (h *hookedStore) RecordedCodeOwner(ctx context.Context, projectID string, q auth.CodeOwnerQuery, record func(auth.CodeOwner) ([]auth.Event, error)) (auth.CodeOwner, error) {
	if !h.failRecordEvents {
		return h.DB.RecordedCodeOwner(ctx, projectID, q, record)
	}
	return h.DB.RecordedCodeOwner(ctx, projectID, q, func(owner auth.CodeOwner) ([]auth.Event, error) {
		if _, err := record(owner); err != nil {
			return nil, err
		}
		return nil, errDiskGone
	})
}

// eventsFixture is a Service on a temp SQLite file with one project and one organization whose
// policy requires MFA, and a caller context.
type eventsFixture struct {
	store   *hookedStore
	keys    *secret.Keyring
	svc     *auth.Service
	clock   *testClock
	pid     string
	ctx     context.Context
	caller  auth.Caller
	org     auth.Organization
	seen    map[string]bool
	secrets []string
}

func newEventsFixture(t *testing.T, mods ...func(*auth.Config)) *eventsFixture {
	t.Helper()
	db := testdb.SQLite(t)
	master := make([]byte, secret.MasterKeySize)
	rand.Read(master)
	keys, err := secret.NewKeyring(master)
	must(t, err)
	f := &eventsFixture{
		store:  &hookedStore{DB: db},
		keys:   keys,
		clock:  &testClock{now: time.Date(2026, time.March, 1, 9, 30, 0, 0, time.UTC)},
		caller: auth.Caller{RequestID: "request-id-test-8d3f0f6e-5d41-4c36-9a0e-2b1c9a6e7f10", ClientIP: "198.51.100.4", UserAgent: "Stytch Node v14.2.0"},
		seen:   map[string]bool{},
	}
	f.svc = f.service(t, mods...)
	f.ctx = auth.WithCaller(context.Background(), f.caller)
	p, sec, err := f.svc.CreateProject(f.ctx)
	must(t, err)
	f.pid, f.secrets = p.ID, []string{sec}
	name, policy := "Acme", auth.MFAPolicyRequiredForAll
	f.org, err = f.svc.CreateOrganization(f.ctx, f.pid, auth.OrganizationInput{Name: &name, MFAPolicy: &policy})
	must(t, err)
	return f
}

// service is another Service on the fixture's store and clock, with mods applied to the defaults.
func (f *eventsFixture) service(t *testing.T, mods ...func(*auth.Config)) *auth.Service {
	t.Helper()
	cfg := auth.DefaultConfig()
	for _, mod := range mods {
		mod(&cfg)
	}
	svc, err := auth.NewService(f.store, f.keys, cfg, f.clock.Now)
	must(t, err)
	return svc
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// keep adds values no event may ever contain.
func (f *eventsFixture) keep(values ...string) {
	for _, v := range values {
		if v != "" {
			f.secrets = append(f.secrets, v, secret.NormalizeRecoveryCode(v))
		}
	}
}

// take returns the events written since the last take, in the order they were written, after
// checking what every event must hold: the project, the action's time, the caller, and no secret.
func (f *eventsFixture) take(t *testing.T) []auth.Event {
	t.Helper()
	page, err := f.svc.ListEvents(f.ctx, f.pid, auth.ListEventsInput{Limit: number("1000")})
	must(t, err)
	if page.NextCursor != "" {
		t.Fatalf("more than 1000 events")
	}
	var out []auth.Event
	for i := len(page.Events) - 1; i >= 0; i-- { // newest first; ids order the events of one second
		e := page.Events[i]
		if f.seen[e.ID] {
			continue
		}
		f.seen[e.ID] = true
		out = append(out, e)
	}
	now := f.clock.Now().UTC().Truncate(time.Second)
	for _, e := range out {
		if !strings.HasPrefix(e.ID, "event-test-") || e.ProjectID != f.pid || !e.Time.Equal(now) {
			t.Errorf("%s: id %q, project %q, time %v; want event-test-…, %s, %v", e.Type, e.ID, e.ProjectID, e.Time, f.pid, now)
		}
		if e.RequestID != f.caller.RequestID || e.ClientIP != f.caller.ClientIP || e.UserAgent != f.caller.UserAgent {
			t.Errorf("%s: caller %q %q %q, want %+v", e.Type, e.RequestID, e.ClientIP, e.UserAgent, f.caller)
		}
		b, _ := json.Marshal(e)
		for _, s := range f.secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("%s holds a secret: %s", e.Type, b)
			}
		}
	}
	return out
}

// expected is an event's type and data; the member and organization are checked apart.
type expected struct {
	typ  string
	data map[string]any
}

// wantEvents checks the events of one action, in order, all about memberID of the fixture's
// organization. Data is compared as JSON.
func (f *eventsFixture) wantEvents(t *testing.T, got []auth.Event, memberID string, want ...expected) {
	t.Helper()
	f.wantEventsAbout(t, got, f.org.ID, memberID, want...)
}

// wantEventsAbout is wantEvents for events about orgID and memberID ("" and "" for the project's
// own events).
func (f *eventsFixture) wantEventsAbout(t *testing.T, got []auth.Event, orgID, memberID string, want ...expected) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("events %v, want %v", types(got), typesOf(want))
		return
	}
	for i, w := range want {
		e := got[i]
		if e.Type != w.typ {
			t.Errorf("event %d is %s, want %s", i, e.Type, w.typ)
			continue
		}
		if e.OrganizationID != orgID || e.MemberID != memberID {
			t.Errorf("%s: organization %q member %q, want %q %q", e.Type, e.OrganizationID, e.MemberID, orgID, memberID)
		}
		if w.data == nil {
			w.data = map[string]any{}
		}
		if !reflect.DeepEqual(asJSON(e.Data), asJSON(w.data)) {
			t.Errorf("%s: data %v, want %v", e.Type, e.Data, w.data)
			continue
		}
		checked.Store(e.Type, true)
	}
}

// checked collects the event types whose fields and data a test checked, so TestEvents can
// prove that every type has its test.
var checked sync.Map

func types(events []auth.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Type
	}
	return out
}

func typesOf(want []expected) []string {
	out := make([]string, len(want))
	for i, w := range want {
		out[i] = w.typ
	}
	return out
}

func asJSON(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

func number(s string) *json.Number { n := json.Number(s); return &n }

// member is a member with a password, and with TOTP and recovery codes once enrolled.
type member struct {
	id, email  string
	totpSecret string
	regID      string
	codes      []string
}

// newMember creates a member with a password; no event is written for it.
func (f *eventsFixture) newMember(t *testing.T, email string) *member {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	must(t, err)
	out, err := f.svc.MigratePassword(f.ctx, f.pid, auth.MigratePasswordInput{OrganizationID: f.org.ID, EmailAddress: email, Hash: string(h), HashType: "bcrypt"})
	must(t, err)
	f.keep(string(h), testPassword)
	if evs := f.take(t); len(evs) != 0 {
		t.Fatalf("password migrate wrote events %v", types(evs))
	}
	return &member{id: out.Member.ID, email: email}
}

// enrolledMember is a new member with TOTP and ten codes; it checks the enrollment's events.
func (f *eventsFixture) enrolledMember(t *testing.T, email string) *member {
	t.Helper()
	m := f.newMember(t, email)
	enr, err := f.svc.CreateTOTP(f.ctx, f.pid, auth.CreateTOTPInput{MemberRef: f.ref(m)})
	must(t, err)
	m.totpSecret, m.regID, m.codes = enr.Secret, enr.RegistrationID, enr.RecoveryCodes
	f.keep(enr.Secret)
	f.keep(enr.RecoveryCodes...)
	f.wantEvents(t, f.take(t), m.id,
		expected{auth.EventTOTPEnrolled, map[string]any{"totp_registration_id": m.regID, "source": "totp_create"}},
		expected{auth.EventRecoveryCodesIssued, map[string]any{"totp_registration_id": m.regID, "count": 10, "source": "totp_create", "imported": false}},
	)
	return m
}

func (f *eventsFixture) ref(m *member) auth.MemberRef {
	return auth.MemberRef{OrganizationID: f.org.ID, MemberID: m.id}
}

// ist logs the member in with the password, which (MFA required) gives an intermediate session.
func (f *eventsFixture) ist(t *testing.T, m *member) string {
	t.Helper()
	out, err := f.svc.AuthenticatePassword(f.ctx, f.pid, auth.AuthenticatePasswordInput{OrganizationID: f.org.ID, EmailAddress: m.email, Password: testPassword})
	must(t, err)
	if out.IntermediateSessionToken == "" {
		t.Fatalf("password authenticate gave no intermediate session")
	}
	f.keep(out.IntermediateSessionToken)
	f.wantEvents(t, f.take(t), m.id, expected{auth.EventPasswordAuthenticated, map[string]any{"mfa_required": true}})
	return out.IntermediateSessionToken
}

func (f *eventsFixture) recover(m *member, code string, args auth.SessionArgs) (auth.Authenticated, error) {
	out, err := f.svc.Recover(f.ctx, f.pid, auth.RecoverInput{MemberRef: f.ref(m), RecoveryCode: code, SessionArgs: args})
	if err == nil {
		f.keep(out.SessionToken, out.SessionJWT)
	}
	return out, err
}

// usedCodeID is the code id the session's recovery_codes factor names.
func usedCodeID(t *testing.T, out auth.Authenticated) string {
	t.Helper()
	for _, fa := range out.Session.Factors {
		if fa.RecoveryCode != nil {
			return fa.RecoveryCode.TOTPRecoveryCodeID
		}
	}
	t.Fatalf("the session has no recovery_codes factor")
	return ""
}

func (f *eventsFixture) totpCode(t *testing.T, m *member) string {
	t.Helper()
	c, err := totp.Code(m.totpSecret, totp.Step(f.clock.Now()))
	must(t, err)
	return c
}

// wrongTOTPCode is a six-digit code that no accepted step (now ±1) produces.
func (f *eventsFixture) wrongTOTPCode(t *testing.T, m *member) string {
	t.Helper()
	valid := map[string]bool{}
	for d := int64(-1); d <= 1; d++ {
		c, err := totp.Code(m.totpSecret, totp.Step(f.clock.Now())+d)
		must(t, err)
		valid[c] = true
	}
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if !valid[c] {
			return c
		}
	}
	panic("unreachable")
}

func wantType(t *testing.T, err error, want *auth.Error) {
	t.Helper()
	if auth.TypeOf(err) != want.Type {
		t.Fatalf("error %v, want %s", err, want.Type)
	}
}

func eventsOfRecoveryCodes(t *testing.T) {
	t.Run("GET records a read of the unused codes; rotate records the new set", func(t *testing.T) {
		t.Parallel()
		f := newEventsFixture(t)
		m := f.enrolledMember(t, "ann@acme.test")
		got, err := f.svc.GetRecoveryCodes(f.ctx, f.pid, f.ref(m))
		must(t, err)
		if len(got.Codes) != 10 {
			t.Fatalf("GET showed %d codes", len(got.Codes))
		}
		evs := f.take(t)
		f.wantEvents(t, evs, m.id, expected{auth.EventRecoveryCodesRead, map[string]any{"totp_registration_id": m.regID, "count": 10}})

		f.clock.Add(time.Minute)
		_, err = f.recover(m, m.codes[0], auth.SessionArgs{IntermediateSessionToken: f.ist(t, m)})
		must(t, err)
		f.take(t)
		_, err = f.svc.GetRecoveryCodes(f.ctx, f.pid, f.ref(m))
		must(t, err)
		f.wantEvents(t, f.take(t), m.id, expected{auth.EventRecoveryCodesRead, map[string]any{"totp_registration_id": m.regID, "count": 9}})

		rotated, err := f.svc.RotateRecoveryCodes(f.ctx, f.pid, f.ref(m))
		must(t, err)
		f.keep(rotated.Codes...)
		evs = f.take(t)
		f.wantEvents(t, evs, m.id, expected{auth.EventRecoveryCodesRotated, map[string]any{"totp_registration_id": m.regID, "count": 10}})

		// Refusals record nothing.
		bare := f.newMember(t, "bob@acme.test")
		_, err = f.svc.GetRecoveryCodes(f.ctx, f.pid, f.ref(bare))
		wantType(t, err, auth.ErrNoRecoveryCodeFactor)
		_, err = f.svc.RotateRecoveryCodes(f.ctx, f.pid, f.ref(bare))
		wantType(t, err, auth.ErrNoRecoveryCodeFactor)
		if evs := f.take(t); len(evs) != 0 {
			t.Errorf("refused GET and rotate wrote %v", types(evs))
		}
	})

	t.Run("a GET whose read cannot be recorded shows no code", func(t *testing.T) {
		t.Parallel()
		f := newEventsFixture(t)
		m := f.enrolledMember(t, "ann@acme.test")
		f.store.failRecordEvents = true
		got, err := f.svc.GetRecoveryCodes(f.ctx, f.pid, f.ref(m))
		if !errors.Is(err, errDiskGone) || got.Codes != nil {
			t.Fatalf("GET with a failing audit write: %d codes, error %v; want none and the write's error", len(got.Codes), err)
		}
	})

	t.Run("a rotate of a member deleted meanwhile records nothing", func(t *testing.T) {
		t.Parallel()
		f := newEventsFixture(t)
		m := f.enrolledMember(t, "ann@acme.test")
		f.store.beforeReplace = func() {
			_, err := f.svc.DeleteMember(f.ctx, f.pid, f.ref(m), auth.Actor{})
			must(t, err)
		}
		_, err := f.svc.RotateRecoveryCodes(f.ctx, f.pid, f.ref(m))
		wantType(t, err, auth.ErrNoRecoveryCodeFactor)
		if evs := f.take(t); len(evs) != 0 {
			t.Errorf("a rotate that found no registration wrote %v", types(evs))
		}
	})

	t.Run("TOTP migrate records the enrollment and the imported or minted set", func(t *testing.T) {
		t.Parallel()
		f := newEventsFixture(t)
		sec, err := totp.NewSecret()
		must(t, err)
		f.keep(sec)
		imported := []string{"7hq2-k4mx-9trb", "ab12-cd34-ef56", "zz99-yy88-xx77"}
		f.keep(imported...)
		m := f.newMember(t, "ann@acme.test")
		out, err := f.svc.MigrateTOTP(f.ctx, f.pid, auth.MigrateTOTPInput{MemberRef: f.ref(m), Secret: sec, RecoveryCodes: imported})
		must(t, err)
		f.wantEvents(t, f.take(t), m.id,
			expected{auth.EventTOTPEnrolled, map[string]any{"totp_registration_id": out.RegistrationID, "source": "totp_migrate"}},
			expected{auth.EventRecoveryCodesIssued, map[string]any{"totp_registration_id": out.RegistrationID, "count": 3, "source": "totp_migrate", "imported": true}},
		)
		n := f.newMember(t, "bob@acme.test")
		out, err = f.svc.MigrateTOTP(f.ctx, f.pid, auth.MigrateTOTPInput{MemberRef: f.ref(n), Secret: sec})
		must(t, err)
		f.keep(out.RecoveryCodes...)
		evs := f.take(t)
		f.wantEvents(t, evs, n.id,
			expected{auth.EventTOTPEnrolled, map[string]any{"totp_registration_id": out.RegistrationID, "source": "totp_migrate"}},
			expected{auth.EventRecoveryCodesIssued, map[string]any{"totp_registration_id": out.RegistrationID, "count": 10, "source": "totp_migrate", "imported": false}},
		)
		_, err = f.svc.MigrateTOTP(f.ctx, f.pid, auth.MigrateTOTPInput{MemberRef: f.ref(n), Secret: sec})
		wantType(t, err, auth.ErrActiveTOTPExists)
		_, err = f.svc.CreateTOTP(f.ctx, f.pid, auth.CreateTOTPInput{MemberRef: f.ref(n)})
		wantType(t, err, auth.ErrActiveTOTPExists)
		if evs := f.take(t); len(evs) != 0 {
			t.Errorf("refused enrollments wrote %v", types(evs))
		}
	})
}

func eventsOfRecover(t *testing.T) {
	t.Run("a use records the code, what remains and the session; a replay is told apart from a wrong code", func(t *testing.T) {
		t.Parallel()
		f := newEventsFixture(t)
		m := f.enrolledMember(t, "ann@acme.test")
		out, err := f.recover(m, m.codes[0], auth.SessionArgs{IntermediateSessionToken: f.ist(t, m)})
		must(t, err)
		codeID, sessionID := usedCodeID(t, out), out.Session.ID
		evs := f.take(t)
		f.wantEvents(t, evs, m.id,
			expected{auth.EventRecoveryCodeUsed, map[string]any{"totp_recovery_code_id": codeID, "remaining": 9, "member_session_id": sessionID}},
			expected{auth.EventSessionCreated, map[string]any{"member_session_id": sessionID, "factor": "recovery_codes"}},
		)
		usedAt := f.clock.Now()

		f.clock.Add(time.Minute)
		_, wrongErr := f.recover(m, "0000-0000-0001", auth.SessionArgs{SessionToken: out.SessionToken})
		wantType(t, wrongErr, auth.ErrRecoveryCodeRejected)
		evs = f.take(t)
		f.wantEvents(t, evs, m.id, expected{auth.EventRecoveryCodeFailed, map[string]any{"reason": "wrong_code", "failed_attempts": 1}})

		_, replayErr := f.recover(m, strings.ToUpper(m.codes[0]), auth.SessionArgs{SessionToken: out.SessionToken})
		if replayErr == nil || replayErr.Error() != wrongErr.Error() {
			t.Errorf("a replayed code got %v, a wrong code %v: the caller must not tell them apart", replayErr, wrongErr)
		}
		evs = f.take(t)
		f.wantEvents(t, evs, m.id,
			expected{auth.EventRecoveryCodeReplayed, map[string]any{"totp_recovery_code_id": codeID, "used_at": usedAt.Format(time.RFC3339)}},
			expected{auth.EventRecoveryCodeFailed, map[string]any{"reason": "replayed", "failed_attempts": 2}},
		)

		// Refusals before the code is looked at record nothing and count nothing.
		for _, tc := range []struct {
			code string
			args auth.SessionArgs
			want *auth.Error
		}{
			{"123456", auth.SessionArgs{SessionToken: out.SessionToken}, auth.ErrTOTPCodeAsRecoveryCode},
			{"not-a-code", auth.SessionArgs{SessionToken: out.SessionToken}, auth.ErrInvalidRecoveryCode},
			{m.codes[1], auth.SessionArgs{}, auth.ErrMissingPrimaryFactor},
			{m.codes[1], auth.SessionArgs{SessionToken: secret.NewToken()}, auth.ErrSessionNotFound},
			{m.codes[1], auth.SessionArgs{IntermediateSessionToken: secret.NewToken()}, auth.ErrISTNotFound},
		} {
			_, err := f.recover(m, tc.code, tc.args)
			wantType(t, err, tc.want)
		}
		if evs := f.take(t); len(evs) != 0 {
			t.Errorf("refused recovers wrote %v", types(evs))
		}
	})

	t.Run("uses that leave three or fewer codes signal low, the last one exhausted", func(t *testing.T) {
		t.Parallel()
		f := newEventsFixture(t)
		m := f.enrolledMember(t, "ann@acme.test")
		out, err := f.recover(m, m.codes[0], auth.SessionArgs{IntermediateSessionToken: f.ist(t, m)})
		must(t, err)
		f.take(t)
		for i := 1; i < 10; i++ {
			f.clock.Add(time.Second)
			next, err := f.recover(m, m.codes[i], auth.SessionArgs{SessionToken: out.SessionToken})
			must(t, err)
			remaining := 9 - i
			want := []expected{{auth.EventRecoveryCodeUsed, map[string]any{"totp_recovery_code_id": usedCodeID(t, next), "remaining": remaining, "member_session_id": out.Session.ID}}}
			switch {
			case remaining == 0:
				want = append(want, expected{auth.EventRecoveryCodesExhausted, map[string]any{"remaining": 0}})
			case remaining <= 3:
				want = append(want, expected{auth.EventRecoveryCodesLow, map[string]any{"remaining": remaining, "threshold": 3}})
			}
			// An existing session gains the factor: no session.created.
			evs := f.take(t)
			f.wantEvents(t, evs, m.id, want...)
		}
	})

	t.Run("the low threshold is configurable, and 0 keeps only exhausted", func(t *testing.T) {
		t.Parallel()
		for _, threshold := range []int{0, 9} {
			f := newEventsFixture(t, func(c *auth.Config) { c.LowCodesThreshold = threshold })
			m := f.enrolledMember(t, "ann@acme.test")
			sess, err := f.recover(m, m.codes[0], auth.SessionArgs{IntermediateSessionToken: f.ist(t, m)})
			must(t, err)
			lows := 0
			for i := 0; i < 10; i++ {
				if i > 0 {
					_, err := f.recover(m, m.codes[i], auth.SessionArgs{SessionToken: sess.SessionToken})
					must(t, err)
				}
				for _, e := range f.take(t) {
					if e.Type == auth.EventRecoveryCodesLow {
						lows++
						if e.Data["threshold"] != float64(threshold) {
							t.Errorf("threshold %v in the event, want %d", e.Data["threshold"], threshold)
						}
					}
				}
			}
			if want := threshold; lows != want {
				t.Errorf("threshold %d: %d low events, want %d", threshold, lows, want)
			}
		}
	})

	t.Run("the lock: locked by the failure that reaches the threshold, unlocked by the next write after it lapses", func(t *testing.T) {
		t.Parallel()
		f := newEventsFixture(t, func(c *auth.Config) { c.Lock = auth.LockPolicy{Threshold: 3, Duration: 10 * time.Minute} })
		m := f.enrolledMember(t, "ann@acme.test")
		ist := f.ist(t, m)
		for i := 1; i <= 3; i++ {
			_, err := f.recover(m, "0000-0000-0001", auth.SessionArgs{IntermediateSessionToken: ist})
			want := []expected{{auth.EventRecoveryCodeFailed, map[string]any{"reason": "wrong_code", "failed_attempts": i}}}
			if i == 3 {
				wantType(t, err, auth.ErrMemberLocked)
				want = append(want, expected{auth.EventMemberLocked, map[string]any{"lock_expires_at": f.clock.Now().Add(10 * time.Minute).Format(time.RFC3339), "failed_attempts": 3}})
			} else {
				wantType(t, err, auth.ErrRecoveryCodeRejected)
			}
			evs := f.take(t)
			f.wantEvents(t, evs, m.id, want...)
		}
		lockEnd := f.clock.Now().Add(10 * time.Minute)
		// While locked: refused without looking at the code, not counted, not recorded.
		_, err := f.recover(m, m.codes[0], auth.SessionArgs{IntermediateSessionToken: ist})
		wantType(t, err, auth.ErrMemberLocked)
		if evs := f.take(t); len(evs) != 0 {
			t.Errorf("a recover while locked wrote %v", types(evs))
		}

		// The next counted failure after the lock lapsed settles it.
		f.clock.Add(10 * time.Minute)
		ist = f.ist(t, m)
		_, err = f.recover(m, "0000-0000-0001", auth.SessionArgs{IntermediateSessionToken: ist})
		wantType(t, err, auth.ErrRecoveryCodeRejected)
		evs := f.take(t)
		f.wantEvents(t, evs, m.id,
			expected{auth.EventMemberUnlocked, map[string]any{"lock_expired_at": lockEnd.Format(time.RFC3339)}},
			expected{auth.EventRecoveryCodeFailed, map[string]any{"reason": "wrong_code", "failed_attempts": 1}},
		)

		// And a success after a lapsed lock settles it too; a success with nothing to settle
		// records no unlock.
		for i := 2; i <= 3; i++ {
			_, err = f.recover(m, "0000-0000-0001", auth.SessionArgs{IntermediateSessionToken: ist})
		}
		wantType(t, err, auth.ErrMemberLocked)
		lockEnd = f.clock.Now().Add(10 * time.Minute)
		f.take(t)
		f.clock.Add(11 * time.Minute)
		out, err := f.recover(m, m.codes[0], auth.SessionArgs{IntermediateSessionToken: f.ist(t, m)})
		must(t, err)
		f.wantEvents(t, f.take(t), m.id,
			expected{auth.EventMemberUnlocked, map[string]any{"lock_expired_at": lockEnd.Format(time.RFC3339)}},
			expected{auth.EventRecoveryCodeUsed, map[string]any{"totp_recovery_code_id": usedCodeID(t, out), "remaining": 9, "member_session_id": out.Session.ID}},
			expected{auth.EventSessionCreated, map[string]any{"member_session_id": out.Session.ID, "factor": "recovery_codes"}},
		)
	})

	t.Run("a Complete refused because the IST was consumed meanwhile records nothing", func(t *testing.T) {
		t.Parallel()
		f := newEventsFixture(t)
		m := f.enrolledMember(t, "ann@acme.test")
		ist := f.ist(t, m)
		f.store.beforeComplete = func() {
			// Another request spends the same IST with another code first.
			_, err := f.recover(m, m.codes[1], auth.SessionArgs{IntermediateSessionToken: ist})
			must(t, err)
		}
		_, err := f.recover(m, m.codes[0], auth.SessionArgs{IntermediateSessionToken: ist})
		wantType(t, err, auth.ErrISTNotFound)
		evs := f.take(t)
		if got := types(evs); !slices.Equal(got, []string{auth.EventRecoveryCodeUsed, auth.EventSessionCreated}) {
			t.Errorf("events %v, want only the other request's use and session", got)
		}
		for _, e := range evs {
			if e.Type == auth.EventRecoveryCodeUsed && e.Data["remaining"] != float64(9) {
				t.Errorf("the other request's use left %v codes, want 9: the refused one spent nothing", e.Data["remaining"])
			}
		}
	})

	t.Run("a Complete refused because the merged claims grew too large meanwhile records nothing", func(t *testing.T) {
		t.Parallel()
		f := newEventsFixture(t)
		m := f.enrolledMember(t, "ann@acme.test")
		out, err := f.recover(m, m.codes[0], auth.SessionArgs{IntermediateSessionToken: f.ist(t, m)})
		must(t, err)
		f.take(t)
		claims := map[string]any{"team": "blue"}
		f.store.beforeComplete = func() {
			// Another request fills the session's claims up to the limit.
			_, err := f.svc.AuthenticateSession(f.ctx, f.pid, auth.AuthenticateSessionInput{
				SessionToken:   out.SessionToken,
				SessionOptions: auth.SessionOptions{CustomClaims: map[string]any{"big": strings.Repeat("x", 4080)}},
			})
			must(t, err)
		}
		_, err = f.svc.Recover(f.ctx, f.pid, auth.RecoverInput{MemberRef: f.ref(m), RecoveryCode: m.codes[1],
			SessionArgs: auth.SessionArgs{SessionToken: out.SessionToken}, SessionOptions: auth.SessionOptions{CustomClaims: claims}})
		wantType(t, err, auth.ErrCustomClaimsTooLarge)
		if evs := f.take(t); len(evs) != 0 {
			t.Errorf("a recover rolled back for its claims wrote %v", types(evs))
		}
		got, err := f.svc.GetRecoveryCodes(f.ctx, f.pid, f.ref(m))
		must(t, err)
		if len(got.Codes) != 9 {
			t.Errorf("%d codes left, want 9: the rolled-back recover spent its code", len(got.Codes))
		}
		f.take(t)
	})

	t.Run("a lost race (the set was rotated meanwhile) is a counted failure", func(t *testing.T) {
		t.Parallel()
		f := newEventsFixture(t)
		m := f.enrolledMember(t, "ann@acme.test")
		ist := f.ist(t, m)
		var rotated []string
		f.store.beforeComplete = func() {
			out, err := f.svc.RotateRecoveryCodes(f.ctx, f.pid, f.ref(m))
			must(t, err)
			rotated = out.Codes
			f.keep(out.Codes...)
		}
		_, err := f.recover(m, m.codes[0], auth.SessionArgs{IntermediateSessionToken: ist})
		wantType(t, err, auth.ErrRecoveryCodeRejected)
		f.wantEvents(t, f.take(t), m.id,
			expected{auth.EventRecoveryCodesRotated, map[string]any{"totp_registration_id": m.regID, "count": len(rotated)}},
			expected{auth.EventRecoveryCodeFailed, map[string]any{"reason": "lost_race", "failed_attempts": 1}},
		)
	})

	t.Run("a failure on a member deleted meanwhile records nothing", func(t *testing.T) {
		t.Parallel()
		f := newEventsFixture(t)
		m := f.enrolledMember(t, "ann@acme.test")
		ist := f.ist(t, m)
		f.store.beforeUpdateMember = func() {
			_, err := f.svc.DeleteMember(f.ctx, f.pid, f.ref(m), auth.Actor{})
			must(t, err)
		}
		_, err := f.recover(m, "0000-0000-0001", auth.SessionArgs{IntermediateSessionToken: ist})
		wantType(t, err, auth.ErrMemberNotFound)
		if evs := f.take(t); len(evs) != 0 {
			t.Errorf("a failure that found no member wrote %v", types(evs))
		}
	})
}

func eventsOfTOTP(t *testing.T) {
	f := newEventsFixture(t)
	m := f.enrolledMember(t, "ann@acme.test")
	ist := f.ist(t, m)
	_, err := f.svc.AuthenticateTOTP(f.ctx, f.pid, auth.AuthenticateTOTPInput{MemberRef: f.ref(m), Code: f.wrongTOTPCode(t, m), SessionArgs: auth.SessionArgs{IntermediateSessionToken: ist}})
	wantType(t, err, auth.ErrTOTPRejected)
	evs := f.take(t)
	f.wantEvents(t, evs, m.id, expected{auth.EventTOTPFailed, map[string]any{"failed_attempts": 1}})

	out, err := f.svc.AuthenticateTOTP(f.ctx, f.pid, auth.AuthenticateTOTPInput{MemberRef: f.ref(m), Code: f.totpCode(t, m), SessionArgs: auth.SessionArgs{IntermediateSessionToken: ist}})
	must(t, err)
	f.keep(out.SessionToken, out.SessionJWT)
	evs = f.take(t)
	f.wantEvents(t, evs, m.id,
		expected{auth.EventTOTPAuthenticated, map[string]any{"totp_registration_id": m.regID, "member_session_id": out.Session.ID}},
		expected{auth.EventSessionCreated, map[string]any{"member_session_id": out.Session.ID, "factor": "totp"}},
	)
	// The same step again: refused as a replay, neither counted nor recorded.
	_, err = f.svc.AuthenticateTOTP(f.ctx, f.pid, auth.AuthenticateTOTPInput{MemberRef: f.ref(m), Code: f.totpCode(t, m), SessionArgs: auth.SessionArgs{SessionToken: out.SessionToken}})
	wantType(t, err, auth.ErrTOTPCodeAlreadyUsed)
	if evs := f.take(t); len(evs) != 0 {
		t.Errorf("a replayed TOTP step wrote %v", types(evs))
	}

	_, _, err = f.svc.DeleteMemberTOTP(f.ctx, f.pid, f.ref(m), auth.Actor{})
	must(t, err)
	evs = f.take(t)
	f.wantEvents(t, evs, m.id, expected{auth.EventTOTPDeleted, map[string]any{"totp_registration_id": m.regID}})
	_, _, err = f.svc.DeleteMemberTOTP(f.ctx, f.pid, f.ref(m), auth.Actor{})
	wantType(t, err, auth.ErrTOTPNotFound)
	if evs := f.take(t); len(evs) != 0 {
		t.Errorf("a refused TOTP delete wrote %v", types(evs))
	}
}

func eventsOfPasswords(t *testing.T) {
	f := newEventsFixture(t)
	m := f.newMember(t, "ann@acme.test")
	f.ist(t, m) // password.authenticated with mfa_required: checked there
	for _, tc := range []struct {
		email, password, memberID, reason string
	}{
		{m.email, "wrong password", m.id, "wrong_password"},
		{"nobody@acme.test", testPassword, "", "unknown_member"},
	} {
		_, err := f.svc.AuthenticatePassword(f.ctx, f.pid, auth.AuthenticatePasswordInput{OrganizationID: f.org.ID, EmailAddress: tc.email, Password: tc.password})
		wantType(t, err, auth.ErrWrongEmailOrPassword)
		f.keep(tc.password)
		evs := f.take(t)
		f.wantEvents(t, evs, tc.memberID, expected{auth.EventPasswordFailed, map[string]any{"reason": tc.reason}})
		for _, e := range evs {
			if b, _ := json.Marshal(e); strings.Contains(string(b), tc.email) {
				t.Errorf("password.failed records the address: %s", b)
			}
		}
	}
	_, cat, err := f.svc.CreateMember(f.ctx, f.pid, f.org.ID, auth.MemberInput{EmailAddress: ptr("cat@acme.test")}, auth.Actor{})
	must(t, err)
	_, err = f.svc.AuthenticatePassword(f.ctx, f.pid, auth.AuthenticatePasswordInput{OrganizationID: f.org.ID, EmailAddress: "cat@acme.test", Password: testPassword})
	wantType(t, err, auth.ErrWrongEmailOrPassword)
	f.wantEvents(t, f.take(t), cat.ID, expected{auth.EventPasswordFailed, map[string]any{"reason": "no_password"}})

	// Without MFA the password lands a session.
	optional := auth.MFAPolicyOptional
	_, err = f.svc.UpdateOrganization(f.ctx, f.pid, f.org.ID, auth.OrganizationInput{MFAPolicy: &optional}, auth.Actor{})
	must(t, err)
	out, err := f.svc.AuthenticatePassword(f.ctx, f.pid, auth.AuthenticatePasswordInput{OrganizationID: f.org.ID, EmailAddress: m.email, Password: testPassword})
	must(t, err)
	f.keep(out.SessionToken, out.SessionJWT)
	evs := f.take(t)
	f.wantEvents(t, evs, m.id,
		expected{auth.EventPasswordAuthenticated, map[string]any{"mfa_required": false}},
		expected{auth.EventSessionCreated, map[string]any{"member_session_id": out.Session.ID, "factor": "password"}},
	)
	// With a live session of the member, the session gains the factor: no new session.
	_, err = f.svc.AuthenticatePassword(f.ctx, f.pid, auth.AuthenticatePasswordInput{OrganizationID: f.org.ID, EmailAddress: m.email, Password: testPassword,
		SessionArgs: auth.SessionArgs{SessionToken: out.SessionToken}})
	must(t, err)
	f.wantEvents(t, f.take(t), m.id, expected{auth.EventPasswordAuthenticated, map[string]any{"mfa_required": false}})
}

func ptr[T any](v T) *T { return &v }

func eventsOfSessionRevoke(t *testing.T) {
	f := newEventsFixture(t)
	m := f.enrolledMember(t, "ann@acme.test")
	var sessions []auth.Authenticated
	for i := range 5 {
		f.clock.Add(time.Second)
		out, err := f.recover(m, m.codes[i], auth.SessionArgs{IntermediateSessionToken: f.ist(t, m)})
		must(t, err)
		f.take(t)
		sessions = append(sessions, out)
	}
	for i, tc := range []struct {
		by string
		in auth.RevokeInput
	}{
		{"member_session_id", auth.RevokeInput{MemberSessionID: sessions[0].Session.ID}},
		{"session_token", auth.RevokeInput{SessionToken: sessions[1].SessionToken}},
		{"session_jwt", auth.RevokeInput{SessionJWT: sessions[2].SessionJWT}},
	} {
		must(t, f.svc.RevokeSession(f.ctx, f.pid, tc.in, auth.Actor{}))
		evs := f.take(t)
		f.wantEvents(t, evs, m.id, expected{auth.EventSessionRevoked, map[string]any{"member_session_id": sessions[i].Session.ID, "by": tc.by}})
		wantType(t, f.svc.RevokeSession(f.ctx, f.pid, tc.in, auth.Actor{}), auth.ErrSessionNotFound)
		if evs := f.take(t); len(evs) != 0 {
			t.Errorf("revoking an ended session wrote %v", types(evs))
		}
	}
	// By member: one event per live session, oldest first.
	must(t, f.svc.RevokeSession(f.ctx, f.pid, auth.RevokeInput{MemberID: m.id}, auth.Actor{}))
	f.wantEvents(t, f.take(t), m.id,
		expected{auth.EventSessionRevoked, map[string]any{"member_session_id": sessions[3].Session.ID, "by": "member_id"}},
		expected{auth.EventSessionRevoked, map[string]any{"member_session_id": sessions[4].Session.ID, "by": "member_id"}},
	)
	must(t, f.svc.RevokeSession(f.ctx, f.pid, auth.RevokeInput{MemberID: m.id}, auth.Actor{}))
	if evs := f.take(t); len(evs) != 0 {
		t.Errorf("revoking a member without sessions wrote %v", types(evs))
	}
}

func eventsOfWebhooks(t *testing.T) {
	f := newEventsFixture(t)
	url := "https://hooks.example.test/sparekey/events?token=receiver-token-5d41"
	hook, sec, err := f.svc.CreateWebhook(f.ctx, f.pid, auth.CreateWebhookInput{URL: &url, EventTypes: []string{auth.EventRecoveryCodeReplayed, auth.EventRecoveryCodeReplayed}})
	must(t, err)
	f.keep(sec, strings.TrimPrefix(sec, auth.WebhookSecretPrefix), "receiver-token-5d41")
	// The URL without its query, which may hold the receiver's token; the types as registered.
	f.wantEventsAbout(t, f.take(t), "", "", expected{auth.EventWebhookCreated, map[string]any{
		"webhook_id": hook.ID, "url": "https://hooks.example.test/sparekey/events", "event_types": []string{auth.EventRecoveryCodeReplayed},
	}})

	// Refused registrations record nothing: by the domain's checks, and by the store's count,
	// whose refusal rolls the event back with the webhook.
	bad := "ftp://hooks.example.test/"
	_, _, err = f.svc.CreateWebhook(f.ctx, f.pid, auth.CreateWebhookInput{URL: &bad})
	wantType(t, err, auth.ErrInvalidWebhookURL)
	every := "https://hooks.example.test/every"
	for range auth.MaxWebhooks - 1 {
		_, _, err := f.svc.CreateWebhook(f.ctx, f.pid, auth.CreateWebhookInput{URL: &every})
		must(t, err)
	}
	f.take(t)
	_, _, err = f.svc.CreateWebhook(f.ctx, f.pid, auth.CreateWebhookInput{URL: &every})
	wantType(t, err, auth.ErrTooManyWebhooks)
	if evs := f.take(t); len(evs) != 0 {
		t.Errorf("refused webhook registrations wrote %v", types(evs))
	}

	must(t, f.svc.DeleteWebhook(f.ctx, f.pid, hook.ID))
	f.wantEventsAbout(t, f.take(t), "", "", expected{auth.EventWebhookDeleted, map[string]any{"webhook_id": hook.ID}})
	wantType(t, f.svc.DeleteWebhook(f.ctx, f.pid, hook.ID), auth.ErrWebhookNotFound)
	if evs := f.take(t); len(evs) != 0 {
		t.Errorf("deleting a deleted webhook wrote %v", types(evs))
	}
}

// TestEvents runs the audit-trail scenarios, then checks that together they checked every event
// type (when none was filtered out).
func TestEvents(t *testing.T) {
	t.Parallel()
	var ran atomic.Int32
	t.Run("scenarios", func(t *testing.T) { // returns once its parallel subtests have ended
		for _, sc := range []struct {
			name string
			run  func(*testing.T)
		}{
			{"recovery codes", eventsOfRecoveryCodes},
			{"recover", eventsOfRecover},
			{"TOTP", eventsOfTOTP},
			{"passwords", eventsOfPasswords},
			{"session revoke", eventsOfSessionRevoke},
			{"webhooks", eventsOfWebhooks},
		} {
			t.Run(sc.name, func(t *testing.T) {
				t.Parallel()
				ran.Add(1)
				sc.run(t)
			})
		}
	})
	if ran.Load() < 6 || t.Failed() {
		return
	}
	var missing []string
	for _, typ := range auth.EventTypes {
		if _, ok := checked.Load(typ); !ok {
			missing = append(missing, typ)
		}
	}
	if len(missing) > 0 {
		t.Errorf("no scenario checked the event types %v", missing)
	}
}

func TestStrictCodeStorage(t *testing.T) {
	t.Parallel()
	strict := func(c *auth.Config) { c.CodeStorage = auth.CodeStorageStrict }
	f := newEventsFixture(t, strict)
	m := f.enrolledMember(t, "ann@acme.test") // the codes come back once, here
	reg, err := f.store.TOTP(f.ctx, f.pid, m.id)
	must(t, err)
	if reg.SealedCodes != nil {
		t.Fatalf("strict storage kept a sealed copy of the set (%d bytes)", len(reg.SealedCodes))
	}
	_, err = f.svc.GetRecoveryCodes(f.ctx, f.pid, f.ref(m))
	wantType(t, err, auth.ErrRecoveryCodesNotRetrievable)
	if evs := f.take(t); len(evs) != 0 {
		t.Errorf("a refused GET wrote %v", types(evs))
	}
	// The codes work; rotate shows the new set once.
	_, err = f.recover(m, m.codes[0], auth.SessionArgs{IntermediateSessionToken: f.ist(t, m)})
	must(t, err)
	f.take(t)
	rotated, err := f.svc.RotateRecoveryCodes(f.ctx, f.pid, f.ref(m))
	must(t, err)
	f.keep(rotated.Codes...)
	f.take(t)
	if len(rotated.Codes) != 10 {
		t.Errorf("rotate showed %d codes, want 10", len(rotated.Codes))
	}
	if reg, _ := f.store.TOTP(f.ctx, f.pid, m.id); reg.SealedCodes != nil {
		t.Errorf("strict rotate kept a sealed copy")
	}
	_, err = f.svc.GetRecoveryCodes(f.ctx, f.pid, f.ref(m))
	wantType(t, err, auth.ErrRecoveryCodesNotRetrievable)

	// A set issued under strict stays hidden under the default policy, and its codes work.
	encrypted := f.service(t)
	_, err = encrypted.GetRecoveryCodes(f.ctx, f.pid, f.ref(m))
	wantType(t, err, auth.ErrRecoveryCodesNotRetrievable)
	sec, err := encrypted.Recover(f.ctx, f.pid, auth.RecoverInput{MemberRef: f.ref(m), RecoveryCode: rotated.Codes[0], SessionArgs: auth.SessionArgs{IntermediateSessionToken: f.ist(t, m)}})
	must(t, err)
	f.keep(sec.SessionToken, sec.SessionJWT)
	f.take(t)
	// A set sealed under the default policy is hidden once the deployment turns strict.
	n := f.newMember(t, "bob@acme.test")
	enr, err := encrypted.CreateTOTP(f.ctx, f.pid, auth.CreateTOTPInput{MemberRef: f.ref(n)})
	must(t, err)
	f.keep(enr.Secret)
	f.keep(enr.RecoveryCodes...)
	_, err = f.svc.GetRecoveryCodes(f.ctx, f.pid, f.ref(n))
	wantType(t, err, auth.ErrRecoveryCodesNotRetrievable)
	got, err := encrypted.GetRecoveryCodes(f.ctx, f.pid, f.ref(n))
	must(t, err)
	if !slices.Equal(got.Codes, enr.RecoveryCodes) {
		t.Errorf("GET under the default policy: %v, want %v", got.Codes, enr.RecoveryCodes)
	}
	f.take(t)
}

func TestListEvents(t *testing.T) {
	t.Parallel()
	f := newEventsFixture(t)
	m := f.enrolledMember(t, "ann@acme.test")
	n := f.enrolledMember(t, "bob@acme.test")
	start := f.clock.Now()
	for i := range 6 {
		f.clock.Add(time.Minute)
		_, err := f.svc.GetRecoveryCodes(f.ctx, f.pid, f.ref([]*member{m, n}[i%2]))
		must(t, err)
		f.take(t)
	}
	list := func(in auth.ListEventsInput) []auth.Event {
		t.Helper()
		var out []auth.Event
		for range 100 {
			page, err := f.svc.ListEvents(f.ctx, f.pid, in)
			must(t, err)
			out = append(out, page.Events...)
			if page.NextCursor == "" {
				return out
			}
			in.Cursor = page.NextCursor
		}
		t.Fatalf("ListEvents does not end")
		return nil
	}
	all := list(auth.ListEventsInput{})
	if len(all) != 10 || all[0].Type != auth.EventRecoveryCodesRead || all[len(all)-1].Type != auth.EventTOTPEnrolled {
		t.Fatalf("ListEvents: %v, want the six reads newest first, then the two enrollments", types(all))
	}
	for _, limit := range []string{"1", "3", "10", "1000"} {
		got := list(auth.ListEventsInput{Limit: number(limit)})
		if !reflect.DeepEqual(got, all) {
			t.Errorf("pages of %s: %v, want %v", limit, types(got), types(all))
		}
	}
	since, until := start.Add(2*time.Minute), start.Add(5*time.Minute)
	for _, tc := range []struct {
		name string
		in   auth.ListEventsInput
		want int
	}{
		{"one type", auth.ListEventsInput{Types: []string{auth.EventTOTPEnrolled}}, 2},
		{"types comma-separated and repeated", auth.ListEventsInput{Types: []string{"totp.enrolled, recovery_codes.issued", "totp.enrolled"}}, 4},
		{"member", auth.ListEventsInput{MemberID: m.id}, 5},
		{"organization", auth.ListEventsInput{OrganizationID: f.org.ID}, 10},
		{"since inclusive, until exclusive", auth.ListEventsInput{Since: &since, Until: &until}, 3},
		// Events have whole seconds: an event at 09:32:00 is before a since of 09:32:00.5, and
		// one at 09:34:00 is before an until of 09:34:00.5.
		{"a fractional since", auth.ListEventsInput{Since: ptr(since.Add(500 * time.Millisecond))}, 4},
		{"a fractional until", auth.ListEventsInput{Until: ptr(until.Add(-time.Minute + 500*time.Millisecond))}, 8},
		{"member and type", auth.ListEventsInput{MemberID: n.id, Types: []string{auth.EventRecoveryCodesRead}, Limit: number("2")}, 3},
		{"since = until", auth.ListEventsInput{Since: &since, Until: &since}, 0},
		{"an unknown member", auth.ListEventsInput{MemberID: "member-test-00000000-0000-4000-8000-000000000000"}, 0},
	} {
		if got := list(tc.in); len(got) != tc.want {
			t.Errorf("%s: %d events %v, want %d", tc.name, len(got), types(got), tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		in   auth.ListEventsInput
	}{
		{"an unknown type", auth.ListEventsInput{Types: []string{"recovery_codes.stolen"}}},
		{"a slug for an organization", auth.ListEventsInput{OrganizationID: "acme"}},
		{"an external id for a member", auth.ListEventsInput{MemberID: "ann-ext"}},
		{"a member id with NUL", auth.ListEventsInput{MemberID: "member-test-\x00"}},
		{"limit 0", auth.ListEventsInput{Limit: number("0")}},
		{"limit 1001", auth.ListEventsInput{Limit: number("1001")}},
		{"limit 1.5", auth.ListEventsInput{Limit: number("1.5")}},
		{"until before since", auth.ListEventsInput{Since: &until, Until: &since}},
		{"a cursor that is not base64", auth.ListEventsInput{Cursor: "!!"}},
		{"a cursor of another kind", auth.ListEventsInput{Cursor: "MTc3MjM1NzQwMDpvcmdhbml6YXRpb24tdGVzdC14"}},
	} {
		_, err := f.svc.ListEvents(f.ctx, f.pid, tc.in)
		if auth.TypeOf(err) != auth.ErrInvalidRequestValue.Type {
			t.Errorf("%s: %v, want invalid_request_value", tc.name, err)
		}
	}
	// Another project sees none of them.
	other, _, err := f.svc.CreateProject(f.ctx)
	must(t, err)
	page, err := f.svc.ListEvents(f.ctx, other.ID, auth.ListEventsInput{})
	must(t, err)
	if len(page.Events) != 0 || page.Events == nil {
		t.Errorf("another project's events: %v (nil %v), want an empty list", types(page.Events), page.Events == nil)
	}
}

func TestCallerIsStoredSafely(t *testing.T) {
	c := auth.CallerFrom(auth.WithCaller(context.Background(), auth.Caller{
		RequestID: "request-id-test-1",
		ClientIP:  "203.0.113.9",
		UserAgent: "bad\x00agent \xff" + strings.Repeat("é", 400),
	}))
	if strings.ContainsRune(c.UserAgent, 0) || !utf8Valid(c.UserAgent) || len(c.UserAgent) > 512 {
		t.Errorf("stored User-Agent %q (%d bytes): want valid UTF-8 without NUL, at most 512 bytes", c.UserAgent, len(c.UserAgent))
	}
	if !strings.HasPrefix(c.UserAgent, "bad\uFFFDagent \uFFFD") {
		t.Errorf("stored User-Agent %q: the readable part should survive", c.UserAgent[:20])
	}
	if auth.CallerFrom(context.Background()) != (auth.Caller{}) {
		t.Errorf("CallerFrom without a caller is not the zero Caller")
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "?") == s }

func TestConfigValidatesEventsAndStorage(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*auth.Config)
		ok   bool
	}{
		{"defaults", func(*auth.Config) {}, true},
		{"threshold 0", func(c *auth.Config) { c.LowCodesThreshold = 0 }, true},
		{"threshold 20", func(c *auth.Config) { c.LowCodesThreshold = 20 }, true},
		{"threshold -1", func(c *auth.Config) { c.LowCodesThreshold = -1 }, false},
		{"threshold 21", func(c *auth.Config) { c.LowCodesThreshold = 21 }, false},
		{"strict", func(c *auth.Config) { c.CodeStorage = auth.CodeStorageStrict }, true},
		{"no storage policy", func(c *auth.Config) { c.CodeStorage = "" }, false},
		{"an unknown storage policy", func(c *auth.Config) { c.CodeStorage = "plaintext" }, false},
		{"event retention 24h", func(c *auth.Config) { c.EventRetention = 24 * time.Hour }, true},
		{"event retention a year", func(c *auth.Config) { c.EventRetention = 8760 * time.Hour }, true},
		{"event retention 5m", func(c *auth.Config) { c.EventRetention = 5 * time.Minute }, false},
		{"event retention negative", func(c *auth.Config) { c.EventRetention = -time.Hour }, false},
	} {
		cfg := auth.DefaultConfig()
		tc.mod(&cfg)
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	if d := auth.DefaultConfig(); d.LowCodesThreshold != 3 || d.CodeStorage != auth.CodeStorageEncrypted {
		t.Errorf("defaults: threshold %d, storage %q; want 3, %q", d.LowCodesThreshold, d.CodeStorage, auth.CodeStorageEncrypted)
	}
}

// PruneEvents deletes what Config.EventRetention no longer keeps, and nothing without one.
func TestPruneEvents(t *testing.T) {
	t.Parallel()
	f := newEventsFixture(t)
	m := f.enrolledMember(t, "ann@acme.test") // its events: now
	f.take(t)
	f.clock.Add(47 * time.Hour)
	_, err := f.svc.GetRecoveryCodes(f.ctx, f.pid, f.ref(m)) // recovery_codes.read: 47h later
	must(t, err)
	read := f.take(t)
	f.clock.Add(2 * time.Hour) // the enrolment is 49h old, the read 2h

	if n, err := f.svc.PruneEvents(f.ctx); err != nil || n != 0 {
		t.Errorf("PruneEvents without a retention = %d, %v; want 0, nil", n, err)
	}
	keep48h := f.service(t, func(c *auth.Config) { c.EventRetention = 48 * time.Hour })
	n, err := keep48h.PruneEvents(f.ctx)
	must(t, err)
	page, err := f.svc.ListEvents(f.ctx, f.pid, auth.ListEventsInput{Limit: number("1000")})
	must(t, err)
	if len(page.Events) != 1 || page.Events[0].ID != read[0].ID {
		t.Errorf("after PruneEvents with 48h retention (%d deleted): events %v, want the read of 2h ago alone", n, types(page.Events))
	}
	if n < 2 {
		t.Errorf("PruneEvents deleted %d events, want the enrolment's (at least 2)", n)
	}
}

// batchStore answers DeleteEventsBefore from a count of events left per project.
type batchStore struct {
	*sqlite.DB
	left  map[string]int
	calls map[string][]int
}

func (b *batchStore) DeleteEventsBefore(_ context.Context, projectID string, _ time.Time, limit int) (int64, error) {
	n := min(b.left[projectID], limit)
	b.left[projectID] -= n
	b.calls[projectID] = append(b.calls[projectID], n)
	return int64(n), nil
}

// PruneEvents goes through every project, batch after batch, until a batch comes back short.
func TestPruneEventsInBatches(t *testing.T) {
	t.Parallel()
	f := newEventsFixture(t)
	second, _, err := f.svc.CreateProject(f.ctx)
	must(t, err)
	store := &batchStore{DB: f.store.DB, left: map[string]int{f.pid: 10003, second.ID: 2}, calls: map[string][]int{}}
	svc, err := auth.NewService(store, f.keys, auth.Config{
		CodeSymbols: 12, Lock: auth.LockPolicy{Threshold: 10, Duration: time.Hour}, KeyCacheTTL: time.Minute,
		CodeStorage: auth.CodeStorageEncrypted, EventRetention: 24 * time.Hour,
	}, f.clock.Now)
	must(t, err)
	n, err := svc.PruneEvents(f.ctx)
	must(t, err)
	if n != 10005 || !slices.Equal(store.calls[f.pid], []int{5000, 5000, 3}) || !slices.Equal(store.calls[second.ID], []int{2}) {
		t.Errorf("PruneEvents = %d in batches %v, want 10005: [5000 5000 3] of %s, [2] of %s", n, store.calls, f.pid, second.ID)
	}
}

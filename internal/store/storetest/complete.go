package storetest

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
)

// addFactor is the ApplySession of a successful factor: it appends f and touches the session.
func addFactor(f auth.Factor, now time.Time) func(*auth.Session) error {
	return func(s *auth.Session) error {
		s.Factors = append(append([]auth.Factor{}, s.Factors...), f)
		s.LastAccessedAt = now
		return nil
	}
}

// enrolled is an ApplyMember that marks a passed MFA.
func enrolled(now time.Time) func(*auth.Member) error {
	return func(m *auth.Member) error {
		m.FailedAttempts, m.MFAEnrolled, m.UpdatedAt = 0, true, now
		return nil
	}
}

// mfaSetup is a member with a registration, its codes and an intermediate session.
type mfaSetup struct {
	m     auth.Member
	reg   auth.TOTPRegistration
	codes []auth.RecoveryCode
	ist   auth.IntermediateSession
}

func (f *fixture) setupMFA(t *testing.T, codes int, mods ...func(*auth.Member)) mfaSetup {
	t.Helper()
	m := f.createMember(t, f.createOrganization(t), mods...)
	reg := f.newTOTP(m)
	reg.LastStep = 1000
	cs := newCodes(codes)
	must(t, f.store.CreateTOTP(f.ctx, f.project.ID, reg, cs), "CreateTOTP")
	return mfaSetup{m: f.reread(t, m), reg: reg, codes: cs, ist: f.createIST(t, m)}
}

// recover is the Completion of a recovery code spent against an intermediate session. It records
// one event (see spentEvent), so every test of a refusal also proves that a refused Completion
// records nothing.
func (f *fixture) recover(s mfaSetup, code auth.RecoveryCode, ist []byte) auth.Completion {
	return auth.Completion{
		ProjectID:         f.project.ID,
		MemberID:          s.m.ID,
		Now:               f.now,
		RefuseIfLocked:    true,
		SpendRecoveryCode: code.ID,
		ConsumeIST:        ist,
		NewSession:        f.newSession(s.m, func(x *auth.Session) { x.Factors = nil }),
		ApplySession:      addFactor(recoveryFactor(f.now, code.ID), f.now),
		ApplyMember:       enrolled(f.now),
		Events: func(before auth.Member, done auth.Completed) []auth.Event {
			return []auth.Event{f.spentEvent(code, before, done)}
		},
	}
}

// spentEvent is the event recover records: what Events was given, so tests can check it.
func (f *fixture) spentEvent(code auth.RecoveryCode, before auth.Member, done auth.Completed) auth.Event {
	return f.newEvent(&done.Member, auth.EventRecoveryCodeUsed, map[string]any{
		"totp_recovery_code_id": code.ID,
		"remaining":             float64(done.RemainingCodes),
		"member_session_id":     done.Session.ID,
		"attempts_before":       float64(before.FailedAttempts),
		"attempts_after":        float64(done.Member.FailedAttempts),
	})
}

// wantUntouched checks that a refused Completion spent and wrote nothing.
func (f *fixture) wantUntouched(t *testing.T, s mfaSetup, what string) {
	t.Helper()
	wantEqual(t, f.codesOf(t, s.reg), s.codes, what+": codes")
	reg, err := f.store.TOTP(f.ctx, f.project.ID, s.m.ID)
	must(t, err, "TOTP")
	wantEqual(t, reg, s.reg, what+": registration (last step)")
	got, err := f.store.IntermediateSession(f.ctx, f.project.ID, s.ist.TokenDigest, f.now)
	if err != nil {
		t.Errorf("%s: intermediate session: %v", what, err)
	} else {
		wantEqual(t, got, s.ist, what+": intermediate session")
	}
	if ids := f.sessionIDs(t, s.m); len(ids) != 0 {
		t.Errorf("%s: %d sessions exist, want none", what, len(ids))
	}
	wantEqual(t, f.reread(t, s.m), s.m, what+": member")
	if evs := f.memberEvents(t, s.m.ID); len(evs) != 0 {
		t.Errorf("%s: %d events recorded, want none: %+v", what, len(evs), evs)
	}
}

var completeTests = []test{
	{"Complete without proof inserts NewSession and applies both functions", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t), func(m *auth.Member) { m.FailedAttempts = 2 })
		s := f.newSession(m, func(s *auth.Session) { s.CustomClaims = fullClaims("new") })
		done, err := f.store.Complete(f.ctx, auth.Completion{
			ProjectID: f.project.ID, MemberID: m.ID, Now: f.now,
			NewSession:   s,
			ApplySession: addFactor(passwordFactor(f.now), f.now),
			ApplyMember:  enrolled(f.now),
		})
		must(t, err, "Complete")
		wantS := s
		wantS.Factors = append(append([]auth.Factor{}, s.Factors...), passwordFactor(f.now))
		wantM := m
		wantM.FailedAttempts, wantM.MFAEnrolled, wantM.UpdatedAt = 0, true, f.now
		wantEqual(t, done.Session, wantS, "Completed.Session")
		wantEqual(t, done.Member, wantM, "Completed.Member")
		if done.RemainingCodes != 0 {
			t.Errorf("RemainingCodes = %d without a spent code, want 0", done.RemainingCodes)
		}
		stored, err := f.store.Session(f.ctx, f.project.ID, s.ID, f.now)
		must(t, err, "Session")
		wantEqual(t, stored, wantS, "stored session")
		wantEqual(t, f.reread(t, m), wantM, "stored member")
	}},
	{"Complete without ApplyMember leaves the member as it was", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t), func(m *auth.Member) { m.FailedAttempts = 2 })
		done, err := f.store.Complete(f.ctx, auth.Completion{ProjectID: f.project.ID, MemberID: m.ID, Now: f.now, NewSession: f.newSession(m)})
		must(t, err, "Complete")
		wantEqual(t, done.Member, m, "Completed.Member")
		wantEqual(t, f.reread(t, m), m, "stored member")
	}},
	{"Complete spends a recovery code once and counts the rest", func(t *testing.T, f *fixture) {
		s := f.setupMFA(t, 5)
		done, err := f.store.Complete(f.ctx, f.recover(s, s.codes[2], s.ist.TokenDigest))
		must(t, err, "Complete")
		if done.RemainingCodes != 4 {
			t.Errorf("RemainingCodes = %d, want 4", done.RemainingCodes)
		}
		want := append([]auth.RecoveryCode{}, s.codes...)
		want[2].UsedAt = f.now
		wantEqual(t, f.codesOf(t, s.reg), want, "codes after the spend")
		wantSession := f.newSession(s.m)
		wantSession.ID, wantSession.TokenDigest = done.Session.ID, done.Session.TokenDigest
		wantSession.Factors = []auth.Factor{passwordFactor(f.now), recoveryFactor(f.now, s.codes[2].ID)}
		wantEqual(t, done.Session, wantSession, "Completed.Session (the intermediate session's factors, then the code's)")
		wantEqual(t, done.Member, f.reread(t, s.m), "Completed.Member (derived ids included)")
		if !done.Member.MFAEnrolled || done.Member.TOTPRegistrationID != s.reg.ID {
			t.Errorf("Completed.Member: MFAEnrolled %v TOTPRegistrationID %q, want true and %q", done.Member.MFAEnrolled, done.Member.TOTPRegistrationID, s.reg.ID)
		}

		// Spent: refused, also with a fresh intermediate session.
		ist := f.createIST(t, s.m)
		_, err = f.store.Complete(f.ctx, f.recover(s, s.codes[2], ist.TokenDigest))
		wantErr(t, err, auth.ErrRecoveryCodeRejected, "Complete spending the code again")
		if _, err := f.store.IntermediateSession(f.ctx, f.project.ID, ist.TokenDigest, f.now); err != nil {
			t.Errorf("a refused spend consumed the intermediate session: %v", err)
		}

		done, err = f.store.Complete(f.ctx, f.recover(s, s.codes[0], ist.TokenDigest))
		must(t, err, "Complete with another code")
		if done.RemainingCodes != 3 {
			t.Errorf("RemainingCodes = %d, want 3", done.RemainingCodes)
		}
		if n := len(f.sessionIDs(t, s.m)); n != 2 {
			t.Errorf("%d sessions after two spends, want 2", n)
		}
	}},
	{"Complete refuses a code that is not the member's", func(t *testing.T, f *fixture) {
		s, other := f.setupMFA(t, 3), f.setupMFA(t, 3)
		for _, tc := range []struct {
			name string
			code auth.RecoveryCode
		}{
			{"another member's code", other.codes[0]},
			{"an unknown code", auth.RecoveryCode{ID: newCodeID()}},
		} {
			_, err := f.store.Complete(f.ctx, f.recover(s, tc.code, s.ist.TokenDigest))
			wantErr(t, err, auth.ErrRecoveryCodeRejected, "Complete: "+tc.name)
		}
		f.wantUntouched(t, s, "after refused spends")
		f.wantUntouched(t, other, "the other member")

		bare := f.createMember(t, f.createOrganization(t))
		ist := f.createIST(t, bare)
		c := f.recover(mfaSetup{m: bare}, s.codes[0], ist.TokenDigest)
		_, err := f.store.Complete(f.ctx, c)
		wantErr(t, err, auth.ErrRecoveryCodeRejected, "Complete: a member without a registration")
	}},
	{"Complete consumes the member's own unexpired intermediate session", func(t *testing.T, f *fixture) {
		s, other := f.setupMFA(t, 3), f.setupMFA(t, 3)
		expired := f.createIST(t, s.m, func(i *auth.IntermediateSession) { i.ExpiresAt = f.now })
		for _, tc := range []struct {
			name string
			ist  []byte
		}{
			{"another member's", other.ist.TokenDigest},
			{"expired (expires_at = now)", expired.TokenDigest},
			{"unknown", digest()},
		} {
			c := auth.Completion{ProjectID: f.project.ID, MemberID: s.m.ID, Now: f.now, ConsumeIST: tc.ist, NewSession: f.newSession(s.m)}
			_, err := f.store.Complete(f.ctx, c)
			wantErr(t, err, auth.ErrISTNotFound, "Complete: "+tc.name+" intermediate session")
		}
		f.wantUntouched(t, other, "the other member")

		c := auth.Completion{
			ProjectID: f.project.ID, MemberID: s.m.ID, Now: f.now,
			ConsumeIST:   s.ist.TokenDigest,
			NewSession:   f.newSession(s.m, func(x *auth.Session) { x.Factors = []auth.Factor{recoveryFactor(f.now, "ignored")} }),
			ApplySession: addFactor(totpFactor(f.now, s.reg.ID), f.now),
		}
		done, err := f.store.Complete(f.ctx, c)
		must(t, err, "Complete")
		wantEqual(t, done.Session.Factors, []auth.Factor{passwordFactor(f.now), totpFactor(f.now, s.reg.ID)}, "factors: the intermediate session's, then the applied one")
		// The caller's Completion is input only: a backend that retries, or a caller that tries
		// again, must find it as it was.
		wantEqual(t, c.NewSession.Factors, []auth.Factor{recoveryFactor(f.now, "ignored")}, "the caller's NewSession.Factors after Complete")
		_, err = f.store.IntermediateSession(f.ctx, f.project.ID, s.ist.TokenDigest, f.now)
		wantErr(t, err, auth.ErrISTNotFound, "IntermediateSession after it was consumed")
		_, err = f.store.Complete(f.ctx, c)
		wantErr(t, err, auth.ErrISTNotFound, "Complete consuming it again")
		if n := len(f.sessionIDs(t, s.m)); n != 1 {
			t.Errorf("%d sessions, want 1", n)
		}
	}},
	{"Complete with SessionID updates that live session and inserts none", func(t *testing.T, f *fixture) {
		s := f.setupMFA(t, 3)
		live := f.createSession(t, s.m, func(x *auth.Session) { x.CustomClaims = fullClaims("live") })
		later := f.now.Add(time.Minute)
		c := auth.Completion{
			ProjectID: f.project.ID, MemberID: s.m.ID, Now: later,
			SessionID:         live.ID,
			SpendRecoveryCode: s.codes[1].ID,
			NewSession:        f.newSession(s.m), // ignored: the session exists
			ApplySession: func(x *auth.Session) error {
				x.Factors = append(append([]auth.Factor{}, x.Factors...), recoveryFactor(later, s.codes[1].ID))
				x.CustomClaims["extra"] = "yes"
				x.LastAccessedAt, x.ExpiresAt = later, later.Add(2*time.Hour)
				return nil
			},
		}
		done, err := f.store.Complete(f.ctx, c)
		must(t, err, "Complete")
		want := live
		want.Factors = append(append([]auth.Factor{}, live.Factors...), recoveryFactor(later, s.codes[1].ID))
		want.CustomClaims = fullClaims("live")
		want.CustomClaims["extra"] = "yes"
		want.LastAccessedAt, want.ExpiresAt = later, later.Add(2*time.Hour)
		wantEqual(t, done.Session, want, "Completed.Session")
		stored, err := f.store.Session(f.ctx, f.project.ID, live.ID, later)
		must(t, err, "Session")
		wantEqual(t, stored, want, "stored session")
		wantEqual(t, f.sessionIDs(t, s.m), []string{live.ID}, "sessions")
		if done.RemainingCodes != 2 {
			t.Errorf("RemainingCodes = %d, want 2", done.RemainingCodes)
		}

		c.SessionID = newID("member-session")
		c.SpendRecoveryCode = s.codes[2].ID
		_, err = f.store.Complete(f.ctx, c)
		wantErr(t, err, auth.ErrSessionNotFound, "Complete with an unknown SessionID")
		if used := usedCodes(f.codesOf(t, s.reg)); len(used) != 1 {
			t.Errorf("a Complete refused for its session spent a code: used %v", used)
		}
	}},
	{"Complete spends each TOTP step once, newer and older ones alike", func(t *testing.T, f *fixture) {
		s := f.setupMFA(t, 1)
		step := func(n int64) auth.Completion {
			return auth.Completion{
				ProjectID: f.project.ID, MemberID: s.m.ID, Now: f.now, RefuseIfLocked: true,
				SpendTOTPStep: &auth.TOTPStep{RegistrationID: s.reg.ID, Step: n},
				NewSession:    f.newSession(s.m),
				ApplySession:  addFactor(totpFactor(f.now, s.reg.ID), f.now),
			}
		}
		lastStep := func() int64 {
			reg, err := f.store.TOTP(f.ctx, f.project.ID, s.m.ID)
			must(t, err, "TOTP")
			return reg.LastStep
		}
		for _, tc := range []struct {
			step int64
			want error
			last int64
		}{
			{1000, auth.ErrTOTPCodeAlreadyUsed, 1000}, // the stored last step itself
			{999, auth.ErrTOTPCodeAlreadyUsed, 1000},  // a stored LastStep alone spends every step up to it
			{1001, nil, 1001},
			{1001, auth.ErrTOTPCodeAlreadyUsed, 1001},
			{1000, auth.ErrTOTPCodeAlreadyUsed, 1001},
			{1005, nil, 1005},
			{1003, nil, 1005}, // skipped by the move to 1005, never spent
			{1003, auth.ErrTOTPCodeAlreadyUsed, 1005},
			{1004, nil, 1005},
			{1001, auth.ErrTOTPCodeAlreadyUsed, 1005},
		} {
			_, err := f.store.Complete(f.ctx, step(tc.step))
			wantErr(t, err, tc.want, "Complete with step "+strconv.FormatInt(tc.step, 10))
			if got := lastStep(); got != tc.last {
				t.Errorf("after step %d: LastStep %d, want %d", tc.step, got, tc.last)
			}
		}
		if n := len(f.sessionIDs(t, s.m)); n != 4 {
			t.Errorf("%d sessions, want 4 (one per accepted step)", n)
		}
	}},
	{"Complete refuses a locked member when asked and spends nothing", func(t *testing.T, f *fixture) {
		lockEnd := f.now.Add(10 * time.Minute)
		s := f.setupMFA(t, 3, func(m *auth.Member) {
			m.FailedAttempts, m.LockCreatedAt, m.LockExpiresAt = 5, f.now.Add(-time.Minute), lockEnd
		})
		c := f.recover(s, s.codes[0], s.ist.TokenDigest)
		c.SpendTOTPStep = &auth.TOTPStep{RegistrationID: s.reg.ID, Step: 1001}
		_, err := f.store.Complete(f.ctx, c)
		wantLockError(t, err, s.m, f.now, "Complete of a locked member")
		f.wantUntouched(t, s, "after the lock refusal")

		// The lock is the first check: a spent code or a missing IST do not change the answer.
		c2 := c
		c2.ConsumeIST = digest()
		_, err = f.store.Complete(f.ctx, c2)
		wantLockError(t, err, s.m, f.now, "Complete of a locked member with an unknown IST")

		// Without RefuseIfLocked the lock is the caller's business.
		c.RefuseIfLocked = false
		_, err = f.store.Complete(f.ctx, c)
		wantErr(t, err, nil, "Complete of a locked member without RefuseIfLocked")
	}},
	{"Complete of a member whose lock has lapsed succeeds", func(t *testing.T, f *fixture) {
		s := f.setupMFA(t, 3, func(m *auth.Member) {
			m.FailedAttempts, m.LockCreatedAt, m.LockExpiresAt = 5, f.now.Add(-time.Hour), f.now // now >= LockExpiresAt
		})
		_, err := f.store.Complete(f.ctx, f.recover(s, s.codes[0], s.ist.TokenDigest))
		wantErr(t, err, nil, "Complete at the lock's end")
	}},
	{"Complete rolls everything back when a later step fails", func(t *testing.T, f *fixture) {
		s := f.setupMFA(t, 3)
		full := func() auth.Completion {
			c := f.recover(s, s.codes[0], s.ist.TokenDigest)
			c.SpendTOTPStep = &auth.TOTPStep{RegistrationID: s.reg.ID, Step: 1001}
			return c
		}
		for _, tc := range []struct {
			name   string
			change func(*auth.Completion)
			want   error
		}{
			{"ApplySession refuses", func(c *auth.Completion) {
				c.ApplySession = func(x *auth.Session) error { x.Factors = nil; return errApply }
			}, errApply},
			{"ApplyMember refuses", func(c *auth.Completion) {
				c.ApplyMember = func(m *auth.Member) error { m.FailedAttempts = 99; return errApply }
			}, errApply},
			{"the intermediate session is unknown", func(c *auth.Completion) { c.ConsumeIST = digest() }, auth.ErrISTNotFound},
			{"the session is unknown", func(c *auth.Completion) { c.ConsumeIST, c.SessionID = nil, newID("member-session") }, auth.ErrSessionNotFound},
			{"the TOTP step is a replay", func(c *auth.Completion) { c.SpendTOTPStep.Step = 1000 }, auth.ErrTOTPCodeAlreadyUsed},
			{"the member is unknown", func(c *auth.Completion) { c.MemberID = newID("member") }, auth.ErrMemberNotFound},
			{"the member is in another project", func(c *auth.Completion) { c.ProjectID = f.otherProject(t).ID }, auth.ErrMemberNotFound},
		} {
			c := full()
			tc.change(&c)
			_, err := f.store.Complete(f.ctx, c)
			wantErr(t, err, tc.want, "Complete: "+tc.name)
			f.wantUntouched(t, s, tc.name)
		}
		// And the untouched proof still works.
		_, err := f.store.Complete(f.ctx, full())
		wantErr(t, err, nil, "Complete after the refusals")
	}},
	{"Complete checks in the documented order", func(t *testing.T, f *fixture) {
		s := f.setupMFA(t, 3)
		spent := s.codes[2]
		ist := f.createIST(t, s.m)
		_, err := f.store.Complete(f.ctx, f.recover(s, spent, ist.TokenDigest))
		must(t, err, "Complete (spend a code)")

		c := f.recover(s, spent, digest())
		_, err = f.store.Complete(f.ctx, c)
		wantErr(t, err, auth.ErrRecoveryCodeRejected, "a spent code and an unknown IST: the code is step 2, the IST step 3")
		c = f.recover(s, s.codes[0], digest())
		c.SpendTOTPStep = &auth.TOTPStep{RegistrationID: s.reg.ID, Step: 1000}
		_, err = f.store.Complete(f.ctx, c)
		wantErr(t, err, auth.ErrTOTPCodeAlreadyUsed, "a replayed step and an unknown IST")
		c = f.recover(s, s.codes[0], nil)
		c.SessionID = newID("member-session")
		c.ApplySession = func(*auth.Session) error { return errApply }
		_, err = f.store.Complete(f.ctx, c)
		wantErr(t, err, auth.ErrSessionNotFound, "an unknown session before ApplySession")
	}},
}

// wantLockError checks that err is m's lock refusal at now, with its retry time.
func wantLockError(t *testing.T, err error, m auth.Member, now time.Time, what string) {
	t.Helper()
	want := m.LockError(now)
	if want == nil {
		t.Fatalf("%s: the member is not locked at %v", what, now)
	}
	wantErr(t, err, want, what)
	var got, w *auth.Error
	if errors.As(err, &got) && errors.As(want, &w) && got.RetryAfter != w.RetryAfter {
		t.Errorf("%s: RetryAfter %v, want %v", what, got.RetryAfter, w.RetryAfter)
	}
}

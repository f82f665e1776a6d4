package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
)

// racers is how many calls each race fires at once: enough to interleave on two cores.
const racers = 32

// race runs fn(0) … fn(n-1) at once, released together once every goroutine is ready, and
// returns each call's error.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	return errs
}

// winners returns the calls that succeeded; every other call must have failed with lost, and
// anything else (a driver error, a serialization failure) fails the test.
func winners(t *testing.T, errs []error, lost error, what string) []int {
	t.Helper()
	var wins []int
	for i, err := range errs {
		switch {
		case err == nil:
			wins = append(wins, i)
		case !errors.Is(err, lost):
			t.Errorf("%s: call %d: %v, want success or %v", what, i, err, lost)
		}
	}
	return wins
}

func wantOneWinner(t *testing.T, errs []error, lost error, what string) int {
	t.Helper()
	wins := winners(t, errs, lost, what)
	if len(wins) != 1 {
		t.Fatalf("%s: %d calls succeeded, want exactly 1 (outcomes %s)", what, len(wins), describe(errs))
	}
	return wins[0]
}

var failedAttemptTests = []test{
	{"a failed attempt (UpdateMember applying RecordFailure) counts, locks at the threshold, ignores failures while locked, restarts after", func(t *testing.T, f *fixture) {
		m := f.newMember(f.createOrganization(t), func(m *auth.Member) { m.MemberProfile = fullProfile("m") })
		pw := f.newPassword(m)
		must(t, f.store.CreateMember(f.ctx, m, &pw), "CreateMember")
		f.createTOTP(t, m, 2)
		p := auth.LockPolicy{Threshold: 3, Duration: 15 * time.Minute}
		want := f.reread(t, m) // with its derived ids, which the result must keep
		lockEnd := f.now.Add(p.Duration)
		for _, step := range []struct {
			at       time.Time
			attempts int
			locked   bool
		}{
			{f.now, 1, false},
			{f.now, 2, false},
			{f.now, 3, true},                        // the threshold locks
			{f.now.Add(time.Minute), 3, true},       // locked: not counted, lock unchanged
			{lockEnd.Add(-time.Second), 3, true},    // still locked
			{lockEnd, 1, false},                     // lapsed (now >= LockExpiresAt): starts over at 1
			{lockEnd.Add(time.Second), 2, false},    // counting again
			{lockEnd.Add(2 * time.Second), 3, true}, // and a new lock from here
			{lockEnd.Add(3 * time.Second), 3, true}, // not counted
			{lockEnd.Add(p.Duration * 5), 1, false}, // long after the second lock
		} {
			got, err := f.recordFailedAttempt(f.ctx, f.project.ID, m.ID, step.at, p)
			must(t, err, "failed attempt")
			want.FailedAttempts = step.attempts
			switch {
			case step.locked && want.LockExpiresAt.IsZero():
				want.LockCreatedAt, want.LockExpiresAt = step.at, step.at.Add(p.Duration)
			case !step.locked:
				want.LockCreatedAt, want.LockExpiresAt = time.Time{}, time.Time{}
			}
			what := fmt.Sprintf("failed attempt at +%v", step.at.Sub(f.now))
			wantEqual(t, got, want, what)
			wantEqual(t, f.reread(t, m), want, what+", stored")
			if got.Locked(step.at) != step.locked {
				t.Errorf("%s: Locked = %v, want %v", what, got.Locked(step.at), step.locked)
			}
		}
	}},
	{"a failed attempt of an unknown member is ErrMemberNotFound", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		other := f.otherProject(t)
		p := auth.LockPolicy{Threshold: 1, Duration: time.Hour}
		_, err := f.recordFailedAttempt(f.ctx, f.project.ID, newID("member"), f.now, p)
		wantErr(t, err, auth.ErrMemberNotFound, "failed attempt of an unknown member")
		_, err = f.recordFailedAttempt(f.ctx, other.ID, m.ID, f.now, p)
		wantErr(t, err, auth.ErrMemberNotFound, "failed attempt through another project")
		wantEqual(t, f.reread(t, m), m, "member after refused attempts")
	}},
}

var atomicityTests = []test{
	{"concurrent spends of one code, each with its own IST: exactly one wins", func(t *testing.T, f *fixture) {
		s := f.setupMFA(t, 10)
		ists := make([]auth.IntermediateSession, racers)
		for i := range ists {
			ists[i] = f.createIST(t, s.m)
		}
		results := make([]auth.Completed, racers)
		errs := race(racers, func(i int) (err error) {
			results[i], err = f.store.Complete(f.ctx, f.recover(s, s.codes[0], ists[i].TokenDigest))
			return err
		})
		win := wantOneWinner(t, errs, auth.ErrRecoveryCodeRejected, "Complete")
		if results[win].RemainingCodes != 9 {
			t.Errorf("winner's RemainingCodes = %d, want 9", results[win].RemainingCodes)
		}
		wantEqual(t, f.sessionIDs(t, s.m), []string{results[win].Session.ID}, "sessions")
		wantEqual(t, usedCodes(f.codesOf(t, s.reg)), []string{s.codes[0].ID}, "used codes")
		for i, ist := range ists {
			_, err := f.store.IntermediateSession(f.ctx, f.project.ID, ist.TokenDigest, f.now)
			if i == win {
				wantErr(t, err, auth.ErrISTNotFound, "the winner's intermediate session")
			} else if err != nil {
				t.Errorf("loser %d's intermediate session was consumed: %v", i, err)
			}
		}
	}},
	{"concurrent spends of one code without a session: exactly one wins", func(t *testing.T, f *fixture) {
		s := f.setupMFA(t, 10)
		errs := race(racers, func(i int) error {
			_, err := f.store.Complete(f.ctx, f.recover(s, s.codes[7], nil))
			return err
		})
		wantOneWinner(t, errs, auth.ErrRecoveryCodeRejected, "Complete")
		if n := len(f.sessionIDs(t, s.m)); n != 1 {
			t.Errorf("%d sessions, want 1", n)
		}
		wantEqual(t, usedCodes(f.codesOf(t, s.reg)), []string{s.codes[7].ID}, "used codes")
	}},
	{"concurrent consumes of one IST with different codes: one wins, the losers' codes stay unspent", func(t *testing.T, f *fixture) {
		s := f.setupMFA(t, racers)
		errs := race(racers, func(i int) error {
			_, err := f.store.Complete(f.ctx, f.recover(s, s.codes[i], s.ist.TokenDigest))
			return err
		})
		win := wantOneWinner(t, errs, auth.ErrISTNotFound, "Complete")
		wantEqual(t, usedCodes(f.codesOf(t, s.reg)), []string{s.codes[win].ID}, "used codes")
		if n := len(f.sessionIDs(t, s.m)); n != 1 {
			t.Errorf("%d sessions, want 1", n)
		}
	}},
	{"concurrent Completes with one TOTP step: one wins, the rest are replays", func(t *testing.T, f *fixture) {
		s := f.setupMFA(t, 1)
		step := func(n int64) auth.Completion {
			return auth.Completion{
				ProjectID: f.project.ID, MemberID: s.m.ID, Now: f.now, RefuseIfLocked: true,
				SpendTOTPStep: &auth.TOTPStep{RegistrationID: s.reg.ID, Step: n},
				NewSession:    f.newSession(s.m),
				ApplySession:  addFactor(totpFactor(f.now, s.reg.ID), f.now),
				ApplyMember:   enrolled(f.now),
			}
		}
		errs := race(racers, func(int) error {
			_, err := f.store.Complete(f.ctx, step(1001))
			return err
		})
		wantOneWinner(t, errs, auth.ErrTOTPCodeAlreadyUsed, "Complete")
		reg, err := f.store.TOTP(f.ctx, f.project.ID, s.m.ID)
		must(t, err, "TOTP")
		if reg.LastStep != 1001 {
			t.Errorf("LastStep = %d, want 1001", reg.LastStep)
		}
		if n := len(f.sessionIDs(t, s.m)); n != 1 {
			t.Errorf("%d sessions, want 1", n)
		}
		_, err = f.store.Complete(f.ctx, step(1000))
		wantErr(t, err, auth.ErrTOTPCodeAlreadyUsed, "an older step after a newer one")
	}},
	{"concurrent Completes with distinct TOTP steps: each lands once, with its session", func(t *testing.T, f *fixture) {
		s := f.setupMFA(t, 1)
		errs := race(racers, func(i int) error {
			_, err := f.store.Complete(f.ctx, auth.Completion{
				ProjectID: f.project.ID, MemberID: s.m.ID, Now: f.now,
				SpendTOTPStep: &auth.TOTPStep{RegistrationID: s.reg.ID, Step: 1001 + int64(i)},
				NewSession:    f.newSession(s.m),
			})
			return err
		})
		// Every step is within the 64 the registration remembers below its newest, so whatever
		// order the racers commit in, none of them finds its step spent.
		if wins := winners(t, errs, auth.ErrTOTPCodeAlreadyUsed, "Complete"); len(wins) != racers {
			t.Errorf("%d of %d distinct steps were accepted, want all (outcomes %s)", len(wins), racers, describe(errs))
		}
		reg, err := f.store.TOTP(f.ctx, f.project.ID, s.m.ID)
		must(t, err, "TOTP")
		if reg.LastStep != 1001+racers-1 {
			t.Errorf("LastStep = %d, want %d", reg.LastStep, 1001+racers-1)
		}
		if n := len(f.sessionIDs(t, s.m)); n != racers {
			t.Errorf("%d sessions for %d accepted steps", n, racers)
		}
		for i := range racers {
			_, err := f.store.Complete(f.ctx, auth.Completion{
				ProjectID: f.project.ID, MemberID: s.m.ID, Now: f.now,
				SpendTOTPStep: &auth.TOTPStep{RegistrationID: s.reg.ID, Step: 1001 + int64(i)},
				NewSession:    f.newSession(s.m),
			})
			wantErr(t, err, auth.ErrTOTPCodeAlreadyUsed, fmt.Sprintf("step %d again", 1001+i))
		}
	}},
	{"concurrent failed attempts: each counted once up to the threshold, none while locked", func(t *testing.T, f *fixture) {
		for _, tc := range []struct{ n, threshold int }{{racers, 5}, {20, 20}, {12, 100}} {
			what := fmt.Sprintf("%d failures, threshold %d", tc.n, tc.threshold)
			m := f.createMember(t, f.createOrganization(t), func(m *auth.Member) { m.MemberProfile = fullProfile("m") })
			p := auth.LockPolicy{Threshold: tc.threshold, Duration: 15 * time.Minute}
			fire := func(at time.Time) []int {
				counts := make([]int, tc.n)
				errs := race(tc.n, func(i int) error {
					after, err := f.recordFailedAttempt(f.ctx, f.project.ID, m.ID, at, p)
					counts[i] = after.FailedAttempts
					return err
				})
				for _, err := range errs {
					must(t, err, what+": failed attempt")
				}
				slices.Sort(counts)
				return counts
			}
			// Every count from 1 to min(n, threshold) is seen exactly once (no two calls read the
			// same count: no lost update); calls after the lock see the threshold.
			wantCounts := func() []int {
				var out []int
				for i := 1; i <= tc.n; i++ {
					out = append(out, min(i, tc.threshold))
				}
				return out
			}()
			locked := tc.n >= tc.threshold
			check := func(at time.Time, counts []int, lockedAt time.Time, phase string) {
				t.Helper()
				wantEqual(t, counts, wantCounts, what+", "+phase+": counts the calls returned")
				got := f.reread(t, m)
				want := m
				want.FailedAttempts = min(tc.n, tc.threshold)
				if locked {
					want.LockCreatedAt, want.LockExpiresAt = lockedAt, lockedAt.Add(p.Duration)
				}
				wantEqual(t, got, want, what+", "+phase+": member")
				if got.Locked(at) != locked {
					t.Errorf("%s, %s: Locked = %v, want %v", what, phase, got.Locked(at), locked)
				}
			}
			check(f.now, fire(f.now), f.now, "first burst")
			if !locked {
				continue
			}
			// While locked nothing is counted.
			during := f.now.Add(time.Minute)
			for _, c := range fire(during) {
				if c != tc.threshold {
					t.Errorf("%s: a failure while locked returned count %d, want %d", what, c, tc.threshold)
					break
				}
			}
			wantEqual(t, f.reread(t, m).LockCreatedAt, f.now, what+": lock after failures while locked")
			// After the lock lapses the count restarts from zero.
			lapsed := f.now.Add(p.Duration)
			check(lapsed, fire(lapsed), lapsed, "after the lock lapsed")
		}
	}},
	{"concurrent rotate and spend: one whole set at every moment, never a mix", func(t *testing.T, f *fixture) {
		const rounds = 12
		spendWon := 0
		for round := range rounds {
			s := f.setupMFA(t, 10)
			spent := s.codes[3]
			fresh, sealed := newCodes(10), randomBytes(80)

			type snapshot struct {
				sealed []byte
				codes  []auth.RecoveryCode
			}
			var snapshots []snapshot
			var readErr error
			stop, read := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(read)
				for range 2000 {
					sealedNow, codes, err := f.store.RecoveryCodes(f.ctx, f.project.ID, s.reg.ID)
					if err != nil {
						readErr = err
						return
					}
					snapshots = append(snapshots, snapshot{sealedNow, codes})
					select {
					case <-stop:
						return
					default:
					}
				}
			}()
			// Which call's goroutine starts first alternates, so both orders get their chance.
			rotator := round % 2
			errs := race(2, func(i int) error {
				if i == rotator {
					return f.store.ReplaceRecoveryCodes(f.ctx, f.project.ID, s.reg.ID, sealed, fresh)
				}
				_, err := f.store.Complete(f.ctx, f.recover(s, spent, s.ist.TokenDigest))
				return err
			})
			close(stop)
			<-read
			what := fmt.Sprintf("round %d", round)
			rotateErr, spendErr := errs[rotator], errs[1-rotator]
			must(t, rotateErr, what+": ReplaceRecoveryCodes")
			must(t, readErr, what+": RecoveryCodes")
			won := spendErr == nil
			if !won && !errors.Is(spendErr, auth.ErrRecoveryCodeRejected) {
				t.Fatalf("%s: Complete: %v, want success or %v", what, spendErr, auth.ErrRecoveryCodeRejected)
			}
			if won {
				spendWon++
			}
			// Whoever won, the new set is there, complete and unused.
			wantEqual(t, f.codesOf(t, s.reg), fresh, what+": codes after both")
			wantSessions := 0
			if won {
				wantSessions = 1
			}
			if n := len(f.sessionIDs(t, s.m)); n != wantSessions {
				t.Errorf("%s: %d sessions, want %d (spend won: %v)", what, n, wantSessions, won)
			}
			_, err := f.store.IntermediateSession(f.ctx, f.project.ID, s.ist.TokenDigest, f.now)
			if won != errors.Is(err, auth.ErrISTNotFound) {
				t.Errorf("%s: intermediate session after the race: %v (spend won: %v)", what, err, won)
			}
			// The sealed set comes with the rows it belongs to: GET shows it through them, so an
			// old set paired with new rows would show codes that were spent.
			for i, snap := range snapshots {
				isNew := wholeSet(snap.codes, fresh, nil, time.Time{}) && bytes.Equal(snap.sealed, sealed)
				isOld := wholeSet(snap.codes, s.codes, &spent, f.now) && bytes.Equal(snap.sealed, s.reg.SealedCodes)
				if !isNew && !isOld {
					t.Errorf("%s: read %d saw a mix of sets, a partial set or a set with another's sealed copy: %d codes, used %v", what, i, len(snap.codes), usedCodes(snap.codes))
					break
				}
			}
		}
		t.Logf("the spend won %d of %d rounds, the rotate %d", spendWon, rounds, rounds-spendWon)
	}},
	{"concurrent UpdateMember calls never lose an update", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t), func(m *auth.Member) {
			m.Roles = []string{"base"}
			m.TrustedMetadata = map[string]any{"counter": float64(0)}
		})
		const n = 20
		errs := race(n, func(i int) error {
			_, err := f.updateMember(f.ctx, f.project.ID, m.ID, func(x *auth.Member) error {
				x.Roles = append(slices.Clone(x.Roles), fmt.Sprintf("role-%02d", i))
				x.TrustedMetadata["counter"] = x.TrustedMetadata["counter"].(float64) + 1
				return nil
			})
			return err
		})
		for _, err := range errs {
			must(t, err, "UpdateMember")
		}
		got := f.reread(t, m)
		wantRoles := []string{"base"}
		for i := range n {
			wantRoles = append(wantRoles, fmt.Sprintf("role-%02d", i))
		}
		roles := slices.Clone(got.Roles)
		slices.Sort(roles)
		slices.Sort(wantRoles)
		wantEqual(t, roles, wantRoles, "roles after concurrent appends")
		wantEqual(t, got.TrustedMetadata["counter"], float64(n), "counter after concurrent increments")
	}},
	{"concurrent UpdateMember, failed attempts and Complete on one member never lose an update", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t), func(m *auth.Member) {
			m.TrustedMetadata = map[string]any{"logins": float64(0)}
		})
		const each = 10
		p := auth.LockPolicy{Threshold: 1000, Duration: time.Hour}
		errs := race(3*each, func(i int) error {
			switch i % 3 {
			case 0:
				_, err := f.updateMember(f.ctx, f.project.ID, m.ID, func(x *auth.Member) error {
					x.Roles = append(slices.Clone(x.Roles), fmt.Sprintf("role-%02d", i))
					return nil
				})
				return err
			case 1:
				_, err := f.recordFailedAttempt(f.ctx, f.project.ID, m.ID, f.now, p)
				return err
			default:
				_, err := f.store.Complete(f.ctx, auth.Completion{
					ProjectID: f.project.ID, MemberID: m.ID, Now: f.now,
					NewSession: f.newSession(m),
					ApplyMember: func(x *auth.Member) error {
						x.TrustedMetadata["logins"] = x.TrustedMetadata["logins"].(float64) + 1
						return nil
					},
				})
				return err
			}
		})
		for _, err := range errs {
			must(t, err, "concurrent member write")
		}
		got := f.reread(t, m)
		if len(got.Roles) != each || got.FailedAttempts != each || got.TrustedMetadata["logins"] != float64(each) {
			t.Errorf("after %d of each write: %d roles, FailedAttempts %d, logins %v; want %d, %d, %d",
				each, len(got.Roles), got.FailedAttempts, got.TrustedMetadata["logins"], each, each, each)
		}
		if n := len(f.sessionIDs(t, m)); n != each {
			t.Errorf("%d sessions, want %d", n, each)
		}
	}},
	{"concurrent UpdateOrganization calls never lose an update", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t, func(o *auth.Organization) {
			o.TrustedMetadata = map[string]any{"counter": float64(0)}
		})
		const n = 20
		errs := race(n, func(i int) error {
			_, err := f.store.UpdateOrganization(f.ctx, f.project.ID, o.ID, func(x *auth.Organization) error {
				x.TrustedMetadata["counter"] = x.TrustedMetadata["counter"].(float64) + 1
				x.EmailAllowedDomains = append(slices.Clone(x.EmailAllowedDomains), fmt.Sprintf("d%02d.example.com", i))
				return nil
			})
			return err
		})
		for _, err := range errs {
			must(t, err, "UpdateOrganization")
		}
		got, err := f.store.Organization(f.ctx, f.project.ID, o.ID)
		must(t, err, "Organization")
		wantEqual(t, got.TrustedMetadata["counter"], float64(n), "counter after concurrent increments")
		if len(got.EmailAllowedDomains) != n {
			t.Errorf("%d allowed domains after %d concurrent appends", len(got.EmailAllowedDomains), n)
		}
	}},
	{"concurrent UpdateSession and UpdateIntermediateSession calls never lose an update", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		s := f.createSession(t, m)
		ist := f.createIST(t, m)
		const n = 20
		errs := race(2*n, func(i int) error {
			if i%2 == 0 {
				_, err := f.store.UpdateSession(f.ctx, f.project.ID, s.ID, f.now, func(x *auth.Session) error {
					x.CustomClaims[fmt.Sprintf("k%02d", i)] = float64(i)
					return nil
				})
				return err
			}
			_, err := f.store.UpdateIntermediateSession(f.ctx, f.project.ID, ist.TokenDigest, f.now, func(x *auth.IntermediateSession) error {
				x.Factors = append(slices.Clone(x.Factors), totpFactor(f.now, fmt.Sprintf("member-totp-test-%02d", i)))
				return nil
			})
			return err
		})
		for _, err := range errs {
			must(t, err, "concurrent session update")
		}
		got, err := f.store.Session(f.ctx, f.project.ID, s.ID, f.now)
		must(t, err, "Session")
		if len(got.CustomClaims) != 1+n {
			t.Errorf("%d custom claims after %d concurrent additions to 1", len(got.CustomClaims), n)
		}
		gotIST, err := f.store.IntermediateSession(f.ctx, f.project.ID, ist.TokenDigest, f.now)
		must(t, err, "IntermediateSession")
		if len(gotIST.Factors) != 1+n {
			t.Errorf("%d factors after %d concurrent additions to 1", len(gotIST.Factors), n)
		}
	}},
	{"concurrent creates with one unique key: one wins, the rest get the domain error", func(t *testing.T, f *fixture) {
		const n = 16
		o := f.createOrganization(t)
		for _, tc := range []struct {
			name   string
			lost   error
			create func(i int) error
		}{
			{"CreateOrganization, one slug", auth.ErrOrganizationSlugUsed, func(int) error {
				return f.store.CreateOrganization(f.ctx, f.newOrganization(func(x *auth.Organization) { x.Slug = "contended" }))
			}},
			{"CreateOrganization, one external id", auth.ErrOrganizationExtIDUsed, func(int) error {
				return f.store.CreateOrganization(f.ctx, f.newOrganization(func(x *auth.Organization) { x.ExternalID = "contended" }))
			}},
			{"CreateMember, one address", auth.ErrDuplicateMemberEmail, func(int) error {
				return f.store.CreateMember(f.ctx, f.newMember(o, func(x *auth.Member) { x.EmailAddress = "contended@example.com" }), nil)
			}},
			{"CreateMember, one external id", auth.ErrDuplicateMemberExtID, func(int) error {
				return f.store.CreateMember(f.ctx, f.newMember(o, func(x *auth.Member) { x.ExternalID = "contended" }), nil)
			}},
		} {
			wantOneWinner(t, race(n, tc.create), tc.lost, tc.name)
		}

		m := f.createMember(t, o)
		regs, sets := make([]auth.TOTPRegistration, n), make([][]auth.RecoveryCode, n)
		for i := range regs {
			regs[i], sets[i] = f.newTOTP(m), newCodes(5)
		}
		win := wantOneWinner(t, race(n, func(i int) error {
			return f.store.CreateTOTP(f.ctx, f.project.ID, regs[i], sets[i])
		}), auth.ErrActiveTOTPExists, "CreateTOTP, one member")
		got, err := f.store.TOTP(f.ctx, f.project.ID, m.ID)
		must(t, err, "TOTP")
		wantEqual(t, got, regs[win], "the winning registration")
		wantEqual(t, f.codesOf(t, regs[win]), sets[win], "the winning registration's codes")
	}},
	{"concurrent updates to one unique key: one wins, the rest get the domain error", func(t *testing.T, f *fixture) {
		const n = 16
		o := f.createOrganization(t)
		orgs, members := make([]auth.Organization, n), make([]auth.Member, n)
		for i := range n {
			orgs[i] = f.createOrganization(t)
			members[i] = f.createMember(t, o)
		}
		for _, tc := range []struct {
			name   string
			lost   error
			update func(i int) error
		}{
			{"UpdateOrganization, one slug", auth.ErrOrganizationSlugUsed, func(i int) error {
				_, err := f.store.UpdateOrganization(f.ctx, f.project.ID, orgs[i].ID, func(x *auth.Organization) error { x.Slug = "contended"; return nil })
				return err
			}},
			{"UpdateOrganization, one external id", auth.ErrOrganizationExtIDUsed, func(i int) error {
				_, err := f.store.UpdateOrganization(f.ctx, f.project.ID, orgs[i].ID, func(x *auth.Organization) error { x.ExternalID = "contended"; return nil })
				return err
			}},
			{"UpdateMember, one address", auth.ErrDuplicateMemberEmail, func(i int) error {
				_, err := f.updateMember(f.ctx, f.project.ID, members[i].ID, func(x *auth.Member) error { x.EmailAddress = "contended@example.com"; return nil })
				return err
			}},
			{"UpdateMember, one external id", auth.ErrDuplicateMemberExtID, func(i int) error {
				_, err := f.updateMember(f.ctx, f.project.ID, members[i].ID, func(x *auth.Member) error { x.ExternalID = "contended"; return nil })
				return err
			}},
		} {
			wantOneWinner(t, race(n, tc.update), tc.lost, tc.name)
		}
	}},
	{"writes racing the deletion of their parent: done before it or refused, never orphaned", func(t *testing.T, f *fixture) {
		const rounds = 8
		for round := range rounds {
			what := func(s string) string { return fmt.Sprintf("round %d: %s", round, s) }
			o := f.createOrganization(t)
			m := f.createMember(t, o)
			victim := f.createMember(t, o)
			child := f.newMember(o)
			reg, codes := f.newTOTP(victim), newCodes(3)
			errs := race(6, func(i int) error {
				switch i {
				case 0:
					return f.store.DeleteMember(f.ctx, f.project.ID, victim.ID)
				case 1:
					return f.store.CreateTOTP(f.ctx, f.project.ID, reg, codes)
				case 2:
					return f.store.SetPassword(f.ctx, f.project.ID, f.newPassword(victim))
				case 3:
					_, err := f.store.Complete(f.ctx, auth.Completion{ProjectID: f.project.ID, MemberID: victim.ID, Now: f.now, NewSession: f.newSession(victim)})
					return err
				case 4:
					_, err := f.updateMember(f.ctx, f.project.ID, victim.ID, func(x *auth.Member) error { x.Status = auth.StatusPending; return nil })
					return err
				default:
					_, err := f.recordFailedAttempt(f.ctx, f.project.ID, victim.ID, f.now, auth.LockPolicy{Threshold: 5, Duration: time.Hour})
					return err
				}
			})
			must(t, errs[0], what("DeleteMember"))
			for i, err := range errs[1:] {
				if err != nil && !errors.Is(err, auth.ErrMemberNotFound) {
					t.Errorf("%s: write %d racing DeleteMember: %v, want success or %v", what(""), i+1, err, auth.ErrMemberNotFound)
				}
			}
			f.wantMemberGone(t, victim, reg, codes[0], auth.Session{ID: newID("member-session"), TokenDigest: digest()}, auth.IntermediateSession{TokenDigest: digest()})

			errs = race(3, func(i int) error {
				switch i {
				case 0:
					return f.store.DeleteOrganization(f.ctx, f.project.ID, o.ID)
				case 1:
					return f.store.CreateMember(f.ctx, child, nil)
				default:
					_, err := f.store.UpdateOrganization(f.ctx, f.project.ID, o.ID, func(x *auth.Organization) error { x.Name = "renamed"; return nil })
					return err
				}
			})
			must(t, errs[0], what("DeleteOrganization"))
			wantErrOrNil(t, errs[1], auth.ErrOrganizationNotFound, what("CreateMember racing DeleteOrganization"))
			wantErrOrNil(t, errs[2], auth.ErrOrganizationNotFound, what("UpdateOrganization racing DeleteOrganization"))
			for _, x := range []auth.Member{m, child} {
				_, err := f.store.Member(f.ctx, f.project.ID, "", x.ID)
				wantErr(t, err, auth.ErrMemberNotFound, what("member of the deleted organization"))
			}
		}
		// No session outlived its member.
		n, err := f.store.DeleteExpired(f.ctx, f.now.Add(100*24*time.Hour))
		must(t, err, "DeleteExpired")
		if n != 0 {
			t.Errorf("%d sessions or intermediate sessions outlived their member", n)
		}
	}},
	{"concurrent deletes: one wins, the rest find nothing", func(t *testing.T, f *fixture) {
		s := f.setupMFA(t, 3)
		sess := f.createSession(t, s.m)
		wantOneWinner(t, race(racers, func(int) error {
			return f.store.DeleteSession(f.ctx, f.project.ID, sess.ID, f.now)
		}), auth.ErrSessionNotFound, "DeleteSession")
		wantOneWinner(t, race(racers, func(int) error {
			_, err := f.deleteTOTP(f.ctx, f.project.ID, s.m.ID, func(x *auth.Member) error { x.UpdatedAt = f.now; return nil })
			return err
		}), auth.ErrTOTPNotFound, "DeleteTOTP")
		wantOneWinner(t, race(racers, func(int) error {
			return f.store.DeleteMember(f.ctx, f.project.ID, s.m.ID)
		}), auth.ErrMemberNotFound, "DeleteMember")
		wantOneWinner(t, race(racers, func(int) error {
			return f.store.DeleteOrganization(f.ctx, f.project.ID, s.m.OrganizationID)
		}), auth.ErrOrganizationNotFound, "DeleteOrganization")
	}},
}

func wantErrOrNil(t *testing.T, err, want error, what string) {
	t.Helper()
	if err != nil && !errors.Is(err, want) {
		t.Errorf("%s: %v, want success or %v", what, err, want)
	}
}

// wholeSet reports whether got is exactly set, every code unused except that spent may be
// used at usedAt.
func wholeSet(got, set []auth.RecoveryCode, spent *auth.RecoveryCode, usedAt time.Time) bool {
	if len(got) != len(set) {
		return false
	}
	for i, c := range got {
		w := set[i]
		if spent != nil && w.ID == spent.ID && !c.UsedAt.IsZero() {
			w.UsedAt = usedAt
		}
		if diff(w, c) != "" {
			return false
		}
	}
	return true
}

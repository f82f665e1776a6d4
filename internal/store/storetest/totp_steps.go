package storetest

import (
	"fmt"
	"testing"

	"github.com/sparekey/sparekey/internal/auth"
)

// The TOTP window is the current step ±1, and each step is accepted at most once per
// registration (CONTRACT.md §6.4), whatever order an authenticator's codes arrive in. Complete
// spends a step through TOTPRegistration.SpendStep on the registration as it stands in the
// transaction; these tests hold both backends to that, in sequence and under races.

// stepSetup is a member with a fresh registration (nothing spent) and an intermediate session.
func (f *fixture) stepSetup(t *testing.T) mfaSetup {
	t.Helper()
	m := f.createMember(t, f.createOrganization(t))
	reg, codes := f.createTOTP(t, m, 1)
	return mfaSetup{m: f.reread(t, m), reg: reg, codes: codes, ist: f.createIST(t, m)}
}

// spendStep is the Completion of a TOTP code of step n, starting a new session.
func (f *fixture) spendStep(s mfaSetup, n int64) auth.Completion {
	return auth.Completion{
		ProjectID: f.project.ID, MemberID: s.m.ID, Now: f.now, RefuseIfLocked: true,
		SpendTOTPStep: &auth.TOTPStep{RegistrationID: s.reg.ID, Step: n},
		NewSession:    f.newSession(s.m),
		ApplySession:  addFactor(totpFactor(f.now, s.reg.ID), f.now),
		ApplyMember:   enrolled(f.now),
	}
}

// spentSteps returns the registration's spent steps as the store has them now.
func (f *fixture) spentSteps(t *testing.T, s mfaSetup) auth.TOTPRegistration {
	t.Helper()
	reg, err := f.store.TOTP(f.ctx, f.project.ID, s.m.ID)
	must(t, err, "TOTP")
	return reg
}

// A step of the current time, as the domain computes them (Unix seconds / 30).
const nowStep = 59_250_000

var totpStepTests = []test{
	{"Complete accepts each step of the window once, in any order", func(t *testing.T, f *fixture) {
		window := []int64{nowStep - 1, nowStep, nowStep + 1}
		for _, order := range [][3]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}} {
			s := f.stepSetup(t)
			var steps []int64
			for _, i := range order {
				steps = append(steps, window[i])
			}
			for _, n := range steps {
				_, err := f.store.Complete(f.ctx, f.spendStep(s, n))
				wantErr(t, err, nil, fmt.Sprintf("order %v: step %d", steps, n))
			}
			for _, n := range append(steps, steps...) {
				_, err := f.store.Complete(f.ctx, f.spendStep(s, n))
				wantErr(t, err, auth.ErrTOTPCodeAlreadyUsed, fmt.Sprintf("order %v: step %d replayed", steps, n))
			}
			reg := f.spentSteps(t, s)
			if reg.LastStep != nowStep+1 {
				t.Errorf("order %v: LastStep %d, want %d", steps, reg.LastStep, nowStep+1)
			}
			for _, n := range window {
				if !reg.SpentSteps().Has(n) {
					t.Errorf("order %v: the stored registration does not hold step %d spent (%d, %b)", steps, n, reg.LastStep, reg.UnspentSteps)
				}
			}
			if n := len(f.sessionIDs(t, s.m)); n != 3 {
				t.Errorf("order %v: %d sessions, want 3 (one per accepted step)", steps, n)
			}
		}
	}},
	{"Complete remembers 64 steps below the newest; older ones count as spent", func(t *testing.T, f *fixture) {
		for _, tc := range []struct {
			name   string
			newest int64
			step   int64
			want   error
		}{
			{"one below", nowStep + 1, nowStep, nil},
			// Its bit is the top one of the 64: stored as a signed integer's sign bit.
			{"the oldest remembered", nowStep + 64, nowStep, nil},
			{"one too old", nowStep + 65, nowStep, auth.ErrTOTPCodeAlreadyUsed},
			{"far too old", nowStep + 100_000, nowStep, auth.ErrTOTPCodeAlreadyUsed},
		} {
			s := f.stepSetup(t)
			_, err := f.store.Complete(f.ctx, f.spendStep(s, tc.newest))
			must(t, err, tc.name+": the newest step")
			_, err = f.store.Complete(f.ctx, f.spendStep(s, tc.step))
			wantErr(t, err, tc.want, tc.name)
			if tc.want == nil {
				_, err = f.store.Complete(f.ctx, f.spendStep(s, tc.step))
				wantErr(t, err, auth.ErrTOTPCodeAlreadyUsed, tc.name+", replayed")
				// Every step in between is still unspent, down to the one that was just spent.
				reg := f.spentSteps(t, s)
				for n := tc.step + 1; n < tc.newest; n++ {
					if reg.SpentSteps().Has(n) {
						t.Errorf("%s: step %d is spent, but only %d and %d were", tc.name, n, tc.newest, tc.step)
						break
					}
				}
			}
		}
	}},
	{"a Complete refused later spends no step, older or newer", func(t *testing.T, f *fixture) {
		s := f.stepSetup(t)
		_, err := f.store.Complete(f.ctx, f.spendStep(s, nowStep+1))
		must(t, err, "Complete (newest step)")
		before := f.spentSteps(t, s)
		for _, n := range []int64{nowStep, nowStep + 2} {
			c := f.spendStep(s, n)
			c.ConsumeIST = digest() // unknown: refused after the step was spent in the transaction
			_, err := f.store.Complete(f.ctx, c)
			wantErr(t, err, auth.ErrISTNotFound, fmt.Sprintf("step %d with an unknown IST", n))
			wantEqual(t, f.spentSteps(t, s), before, fmt.Sprintf("the registration after step %d was refused", n))
		}
		for _, n := range []int64{nowStep, nowStep + 2} {
			c := f.spendStep(s, n)
			c.ConsumeIST = f.createIST(t, s.m).TokenDigest
			_, err := f.store.Complete(f.ctx, c)
			wantErr(t, err, nil, fmt.Sprintf("step %d after its refusal", n))
		}
	}},
	{"concurrent Completes with one step below the newest: one wins, the rest are replays", func(t *testing.T, f *fixture) {
		s := f.stepSetup(t)
		_, err := f.store.Complete(f.ctx, f.spendStep(s, nowStep+1))
		must(t, err, "Complete (newest step)")
		errs := race(racers, func(int) error {
			_, err := f.store.Complete(f.ctx, f.spendStep(s, nowStep-1))
			return err
		})
		wantOneWinner(t, errs, auth.ErrTOTPCodeAlreadyUsed, "Complete")
		if n := len(f.sessionIDs(t, s.m)); n != 2 {
			t.Errorf("%d sessions, want 2", n)
		}
		// The race spent that step alone.
		_, err = f.store.Complete(f.ctx, f.spendStep(s, nowStep))
		wantErr(t, err, nil, "the step between")
	}},
	{"concurrent Completes with the three steps of the window: each step wins once", func(t *testing.T, f *fixture) {
		s := f.stepSetup(t)
		step := func(i int) int64 { return nowStep - 1 + int64(i%3) }
		errs := race(racers, func(i int) error {
			_, err := f.store.Complete(f.ctx, f.spendStep(s, step(i)))
			return err
		})
		won := map[int64]int{}
		for _, i := range winners(t, errs, auth.ErrTOTPCodeAlreadyUsed, "Complete") {
			won[step(i)]++
		}
		for i := range 3 {
			if n := won[step(i)]; n != 1 {
				t.Errorf("step %d was accepted %d times, want once (outcomes %s)", step(i), n, describe(errs))
			}
		}
		if n := len(f.sessionIDs(t, s.m)); n != 3 {
			t.Errorf("%d sessions, want 3", n)
		}
	}},
}

package storetest

import (
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
)

var totpTests = []test{
	{"CreateTOTP round-trips the registration and its codes in issue order", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		reg := f.newTOTP(m)
		reg.LastStep = 59_000_123
		reg.UnspentSteps = 1<<63 | 0b101 // the top bit too: stored as a signed integer, it must come back
		codes := newCodes(10)
		codes[4].UsedAt = f.now.Add(-time.Minute) // stored as given, used or not
		// Handed over out of order: RecoveryCodes must sort by Position, not by insertion.
		shuffled := []auth.RecoveryCode{codes[7], codes[2], codes[9], codes[0], codes[5], codes[1], codes[8], codes[3], codes[6], codes[4]}
		must(t, f.store.CreateTOTP(f.ctx, f.project.ID, reg, shuffled), "CreateTOTP")

		got, err := f.store.TOTP(f.ctx, f.project.ID, m.ID)
		must(t, err, "TOTP")
		wantEqual(t, got, reg, "TOTP")
		wantEqual(t, f.codesOf(t, reg), codes, "RecoveryCodes")
		for _, c := range codes {
			found, err := f.store.FindRecoveryCode(f.ctx, f.project.ID, reg.ID, c.MAC)
			if err != nil {
				t.Errorf("FindRecoveryCode(%s): %v", c.ID, err)
				continue
			}
			wantEqual(t, found, c, "FindRecoveryCode")
		}
		if id := f.reread(t, m).TOTPRegistrationID; id != reg.ID {
			t.Errorf("Member.TOTPRegistrationID = %q, want %q", id, reg.ID)
		}
	}},
	{"CreateTOTP without a sealed set (strict storage) round-trips", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		reg := f.newTOTP(m)
		reg.SealedCodes = nil
		codes := newCodes(3)
		must(t, f.store.CreateTOTP(f.ctx, f.project.ID, reg, codes), "CreateTOTP")
		got, err := f.store.TOTP(f.ctx, f.project.ID, m.ID)
		must(t, err, "TOTP")
		wantEqual(t, got, reg, "TOTP")
		if got.SealedCodes != nil {
			t.Errorf("SealedCodes = %x, want nil", got.SealedCodes)
		}
		wantEqual(t, f.codesOf(t, reg), codes, "RecoveryCodes")
	}},
	{"CreateTOTP errors store nothing", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		m := f.createMember(t, o)
		reg, codes := f.createTOTP(t, m, 5)
		other := f.otherProject(t)
		x := f.createMember(t, f.createOrganization(t, inProject(other)))

		for _, tc := range []struct {
			name      string
			projectID string
			memberID  string
			want      error
		}{
			{"unknown member", f.project.ID, newID("member"), auth.ErrMemberNotFound},
			{"another project's member", f.project.ID, x.ID, auth.ErrMemberNotFound},
			{"through another project", other.ID, m.ID, auth.ErrMemberNotFound},
			{"second registration", f.project.ID, m.ID, auth.ErrActiveTOTPExists},
		} {
			second, secondCodes := f.newTOTP(auth.Member{ID: tc.memberID}), newCodes(5)
			wantErr(t, f.store.CreateTOTP(f.ctx, tc.projectID, second, secondCodes), tc.want, "CreateTOTP: "+tc.name)
			if n := len(f.codesOf(t, second)); n != 0 {
				t.Errorf("%s: refused registration has %d codes stored", tc.name, n)
			}
			_, err := f.store.FindRecoveryCode(f.ctx, f.project.ID, reg.ID, secondCodes[0].MAC)
			wantErr(t, err, auth.ErrRecoveryCodeRejected, tc.name+": refused code joined the registration")
		}
		got, err := f.store.TOTP(f.ctx, f.project.ID, m.ID)
		must(t, err, "TOTP")
		wantEqual(t, got, reg, "registration after refused creates")
		wantEqual(t, f.codesOf(t, reg), codes, "codes after refused creates")
		_, err = f.store.TOTP(f.ctx, other.ID, x.ID)
		wantErr(t, err, auth.ErrTOTPNotFound, "TOTP of a member whose create was refused")
	}},
	{"TOTP, RecoveryCodes and FindRecoveryCode are scoped by project and registration", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		m, n := f.createMember(t, o), f.createMember(t, o)
		reg, codes := f.createTOTP(t, m, 3)
		nreg, ncodes := f.createTOTP(t, n, 3)
		bare := f.createMember(t, o)
		other := f.otherProject(t)

		_, err := f.store.TOTP(f.ctx, f.project.ID, bare.ID)
		wantErr(t, err, auth.ErrTOTPNotFound, "TOTP of a member without one")
		_, err = f.store.TOTP(f.ctx, f.project.ID, newID("member"))
		wantErr(t, err, auth.ErrTOTPNotFound, "TOTP of an unknown member")
		_, err = f.store.TOTP(f.ctx, other.ID, m.ID)
		wantErr(t, err, auth.ErrTOTPNotFound, "TOTP through another project")

		for _, tc := range []struct {
			name      string
			projectID string
			regID     string
			mac       []byte
		}{
			{"unknown MAC", f.project.ID, reg.ID, randomBytes(32)},
			{"another registration's code", f.project.ID, reg.ID, ncodes[0].MAC},
			{"through another project", other.ID, reg.ID, codes[0].MAC},
			{"unknown registration", f.project.ID, newID("member-totp"), codes[0].MAC},
			{"empty MAC", f.project.ID, reg.ID, nil},
		} {
			_, err := f.store.FindRecoveryCode(f.ctx, tc.projectID, tc.regID, tc.mac)
			wantErr(t, err, auth.ErrRecoveryCodeRejected, "FindRecoveryCode: "+tc.name)
		}
		for _, tc := range []struct {
			name      string
			projectID string
			regID     string
		}{
			{"through another project", other.ID, reg.ID},
			{"unknown registration", f.project.ID, newID("member-totp")},
		} {
			_, got, err := f.store.RecoveryCodes(f.ctx, tc.projectID, tc.regID)
			if err != nil || len(got) != 0 {
				t.Errorf("RecoveryCodes: %s = %d codes, %v; want none", tc.name, len(got), err)
			}
		}
		wantEqual(t, f.codesOf(t, nreg), ncodes, "the other registration's codes")
	}},
	{"FindRecoveryCode finds a used code with its UsedAt", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		reg, codes := f.createTOTP(t, m, 3)
		ist := f.createIST(t, m)
		_, err := f.store.Complete(f.ctx, auth.Completion{ProjectID: f.project.ID, MemberID: m.ID, Now: f.now, SpendRecoveryCode: codes[1].ID, ConsumeIST: ist.TokenDigest, NewSession: f.newSession(m)})
		must(t, err, "Complete")
		got, err := f.store.FindRecoveryCode(f.ctx, f.project.ID, reg.ID, codes[1].MAC)
		must(t, err, "FindRecoveryCode(used)")
		want := codes[1]
		want.UsedAt = f.now
		wantEqual(t, got, want, "FindRecoveryCode(used)")
	}},
	{"ReplaceRecoveryCodes swaps the whole set and the sealed set", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		reg, old := f.createTOTP(t, m, 10)
		_, err := f.store.Complete(f.ctx, auth.Completion{ProjectID: f.project.ID, MemberID: m.ID, Now: f.now, SpendRecoveryCode: old[0].ID, NewSession: f.newSession(m)})
		must(t, err, "Complete (spend one old code)")

		fresh, sealed := newCodes(10), randomBytes(170)
		must(t, f.store.ReplaceRecoveryCodes(f.ctx, f.project.ID, reg.ID, sealed, fresh), "ReplaceRecoveryCodes")
		wantEqual(t, f.codesOf(t, reg), fresh, "RecoveryCodes after replace")
		want := reg
		want.SealedCodes = sealed
		got, err := f.store.TOTP(f.ctx, f.project.ID, m.ID)
		must(t, err, "TOTP")
		wantEqual(t, got, want, "TOTP after replace")
		for _, c := range old {
			_, err := f.store.FindRecoveryCode(f.ctx, f.project.ID, reg.ID, c.MAC)
			wantErr(t, err, auth.ErrRecoveryCodeRejected, "FindRecoveryCode(old code)")
		}
		// An old code id can no longer be spent, used or not.
		_, err = f.store.Complete(f.ctx, auth.Completion{ProjectID: f.project.ID, MemberID: m.ID, Now: f.now, SpendRecoveryCode: old[5].ID, NewSession: f.newSession(m)})
		wantErr(t, err, auth.ErrRecoveryCodeRejected, "Complete spending a replaced code")

		// A smaller set, and the strict policy's nil sealed set.
		smaller := newCodes(2)
		must(t, f.store.ReplaceRecoveryCodes(f.ctx, f.project.ID, reg.ID, nil, smaller), "ReplaceRecoveryCodes(smaller)")
		wantEqual(t, f.codesOf(t, reg), smaller, "RecoveryCodes after a smaller replace")
		got, err = f.store.TOTP(f.ctx, f.project.ID, m.ID)
		must(t, err, "TOTP")
		if got.SealedCodes != nil {
			t.Errorf("SealedCodes after replacing with nil = %x, want nil", got.SealedCodes)
		}
	}},
	{"ReplaceRecoveryCodes of an unknown registration is ErrTOTPNotFound", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		reg, codes := f.createTOTP(t, m, 3)
		other := f.otherProject(t)
		wantErr(t, f.store.ReplaceRecoveryCodes(f.ctx, f.project.ID, newID("member-totp"), randomBytes(10), newCodes(3)), auth.ErrTOTPNotFound, "ReplaceRecoveryCodes(unknown)")
		wantErr(t, f.store.ReplaceRecoveryCodes(f.ctx, f.project.ID, m.ID, randomBytes(10), newCodes(3)), auth.ErrTOTPNotFound, "ReplaceRecoveryCodes(member id)")
		wantErr(t, f.store.ReplaceRecoveryCodes(f.ctx, other.ID, reg.ID, randomBytes(10), newCodes(3)), auth.ErrTOTPNotFound, "ReplaceRecoveryCodes through another project")
		wantEqual(t, f.codesOf(t, reg), codes, "codes after refused replaces")
		got, err := f.store.TOTP(f.ctx, f.project.ID, m.ID)
		must(t, err, "TOTP")
		wantEqual(t, got, reg, "registration after refused replaces")
	}},
	{"DeleteTOTP removes the registration and its codes and applies apply in the same transaction", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		m := f.createMember(t, o, func(m *auth.Member) { m.MemberProfile = fullProfile("m") })
		reg, codes := f.createTOTP(t, m, 5)
		before := f.reread(t, m)

		got, err := f.deleteTOTP(f.ctx, f.project.ID, m.ID, func(x *auth.Member) error {
			wantEqual(t, *x, before, "the member apply sees")
			x.TOTPRegistrationID, x.DefaultMFAMethod, x.UpdatedAt = "", "", f.now
			return nil
		})
		must(t, err, "DeleteTOTP")
		want := before
		want.TOTPRegistrationID, want.DefaultMFAMethod, want.UpdatedAt = "", "", f.now
		wantEqual(t, got, want, "DeleteTOTP result")
		wantEqual(t, f.reread(t, m), want, "member after DeleteTOTP")
		_, err = f.store.TOTP(f.ctx, f.project.ID, m.ID)
		wantErr(t, err, auth.ErrTOTPNotFound, "TOTP after delete")
		if n := len(f.codesOf(t, reg)); n != 0 {
			t.Errorf("RecoveryCodes after DeleteTOTP = %d codes, want none", n)
		}
		_, err = f.store.FindRecoveryCode(f.ctx, f.project.ID, reg.ID, codes[0].MAC)
		wantErr(t, err, auth.ErrRecoveryCodeRejected, "FindRecoveryCode after delete")

		_, err = f.deleteTOTP(f.ctx, f.project.ID, m.ID, func(x *auth.Member) error { x.Status = auth.StatusPending; return nil })
		wantErr(t, err, auth.ErrTOTPNotFound, "DeleteTOTP again")
		wantEqual(t, f.reread(t, m), want, "member after a refused DeleteTOTP (apply must not be stored)")

		// The member can register again.
		f.createTOTP(t, m, 5)
	}},
	{"DeleteTOTP errors delete nothing", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		reg, codes := f.createTOTP(t, m, 4)
		before := f.reread(t, m)
		other := f.otherProject(t)
		change := func(x *auth.Member) error { x.Status = auth.StatusPending; return nil }

		for _, tc := range []struct {
			name      string
			projectID string
			memberID  string
			apply     func(*auth.Member) error
			want      error
		}{
			{"unknown member", f.project.ID, newID("member"), change, auth.ErrMemberNotFound},
			{"through another project", other.ID, m.ID, change, auth.ErrMemberNotFound},
			{"apply refuses", f.project.ID, m.ID, func(x *auth.Member) error { x.Status = auth.StatusPending; return errApply }, errApply},
		} {
			_, err := f.deleteTOTP(f.ctx, tc.projectID, tc.memberID, tc.apply)
			wantErr(t, err, tc.want, "DeleteTOTP: "+tc.name)
		}
		got, err := f.store.TOTP(f.ctx, f.project.ID, m.ID)
		must(t, err, "TOTP after refused deletes")
		wantEqual(t, got, reg, "registration after refused deletes")
		wantEqual(t, f.codesOf(t, reg), codes, "codes after refused deletes")
		wantEqual(t, f.reread(t, m), before, "member after refused deletes")
	}},
}

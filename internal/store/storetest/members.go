package storetest

import (
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
)

var memberTests = []test{
	{"CreateMember round-trips every field, with its password and registration ids", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		m := f.newMember(o, func(m *auth.Member) {
			m.ExternalID = "ext-" + short()
			m.Status = auth.StatusPending
			m.MemberProfile = fullProfile("full")
			m.FailedAttempts = 4
			m.LockCreatedAt, m.LockExpiresAt = f.now.Add(-time.Minute), f.now.Add(time.Hour)
			m.CreatedAt, m.UpdatedAt = f.now.Add(-3*time.Hour), f.now.Add(-2*time.Hour)
		})
		pw := f.newPassword(m)
		must(t, f.store.CreateMember(f.ctx, m, &pw), "CreateMember")

		want := m
		want.PasswordID = pw.ID
		f.wantMemberEverywhere(t, want)
		got, err := f.store.Password(f.ctx, f.project.ID, m.ID)
		must(t, err, "Password")
		wantEqual(t, got, pw, "Password")

		reg, _ := f.createTOTP(t, m, 2)
		want.TOTPRegistrationID = reg.ID
		f.wantMemberEverywhere(t, want)
	}},
	{"CreateMember with an empty profile and no password round-trips", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		m := f.createMember(t, o)
		f.wantMemberEverywhere(t, m)
		_, err := f.store.Password(f.ctx, f.project.ID, m.ID)
		wantErr(t, err, auth.ErrNoPassword, "Password of a member created without one")
	}},
	{"CreateMember errors store nothing", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		first := f.createMember(t, o, func(m *auth.Member) { m.ExternalID = "ext-" + short() })
		other := f.otherProject(t)
		x := f.createOrganization(t, inProject(other))

		for _, tc := range []struct {
			name string
			m    auth.Member
			want error
		}{
			{"unknown organization", f.newMember(f.newOrganization()), auth.ErrOrganizationNotFound},
			{"another project's organization", f.newMember(x, func(m *auth.Member) { m.ProjectID = f.project.ID }), auth.ErrOrganizationNotFound},
			{"organization named by slug", f.newMember(o, func(m *auth.Member) { m.OrganizationID = o.Slug }), auth.ErrOrganizationNotFound},
			{"used email", f.newMember(o, func(m *auth.Member) { m.EmailAddress = first.EmailAddress }), auth.ErrDuplicateMemberEmail},
			{"used external id", f.newMember(o, func(m *auth.Member) { m.ExternalID = first.ExternalID }), auth.ErrDuplicateMemberExtID},
		} {
			pw := f.newPassword(tc.m)
			wantErr(t, f.store.CreateMember(f.ctx, tc.m, &pw), tc.want, "CreateMember: "+tc.name)
			_, err := f.store.Member(f.ctx, f.project.ID, "", tc.m.ID)
			wantErr(t, err, auth.ErrMemberNotFound, tc.name+": refused member stored anyway")
			_, err = f.store.Password(f.ctx, f.project.ID, tc.m.ID)
			wantErr(t, err, auth.ErrNoPassword, tc.name+": refused member's password stored anyway")
		}
		f.wantMemberEverywhere(t, first)

		// Addresses and external ids are unique per organization; "" is no external id.
		o2 := f.createOrganization(t)
		f.createMember(t, o2, func(m *auth.Member) { m.EmailAddress, m.ExternalID = first.EmailAddress, first.ExternalID })
		f.createMember(t, o)
		f.createMember(t, o)
	}},
	{"Member resolves an id, then an external id, inside the organization", func(t *testing.T, f *fixture) {
		o1, o2 := f.createOrganization(t), f.createOrganization(t)
		a := f.createMember(t, o1, func(m *auth.Member) { m.ExternalID = "ext-a-" + short() })
		b := f.createMember(t, o1, func(m *auth.Member) { m.ExternalID = a.ID }) // b's external id is a's id
		x := f.createMember(t, o2, func(m *auth.Member) { m.ExternalID = "ext-x-" + short() })
		y := f.createMember(t, o1, func(m *auth.Member) { m.ExternalID = x.ID }) // y's external id is x's id
		other := f.otherProject(t)

		for _, tc := range []struct {
			name           string
			projectID, org string
			ref            string
			want           *auth.Member
		}{
			{"id", f.project.ID, o1.ID, a.ID, &a}, // also b's external id: the id wins
			{"external id", f.project.ID, o1.ID, a.ExternalID, &a},
			{"b by id", f.project.ID, o1.ID, b.ID, &b},
			{"another organization's member id is an external id here", f.project.ID, o1.ID, x.ID, &y},
			{"x in its organization", f.project.ID, o2.ID, x.ID, &x},
			{"x by external id", f.project.ID, o2.ID, x.ExternalID, &x},
			{"a is not in o2", f.project.ID, o2.ID, a.ID, nil},
			{"a's external id is not in o2", f.project.ID, o2.ID, a.ExternalID, nil},
			{"x's external id is not in o1", f.project.ID, o1.ID, x.ExternalID, nil},
			{"empty ref", f.project.ID, o1.ID, "", nil},
			{"unknown", f.project.ID, o1.ID, newID("member"), nil},
			{"organization named by slug", f.project.ID, o1.Slug, a.ID, nil},
			{"unknown organization", f.project.ID, newID("organization"), a.ID, nil},
			{"any organization: canonical id", f.project.ID, "", a.ID, &a},
			{"any organization: x", f.project.ID, "", x.ID, &x},
			{"any organization: no external ids", f.project.ID, "", a.ExternalID, nil},
			{"any organization: empty ref", f.project.ID, "", "", nil},
			{"another project", other.ID, o1.ID, a.ID, nil},
			{"another project, external id", other.ID, o1.ID, a.ExternalID, nil},
			{"another project, any organization", other.ID, "", a.ID, nil},
		} {
			got, err := f.store.Member(f.ctx, tc.projectID, tc.org, tc.ref)
			if tc.want == nil {
				wantErr(t, err, auth.ErrMemberNotFound, "Member: "+tc.name)
				continue
			}
			if err != nil {
				t.Errorf("Member: %s: %v", tc.name, err)
				continue
			}
			wantEqual(t, got, *tc.want, "Member: "+tc.name)
		}

		for _, tc := range []struct {
			name           string
			projectID, org string
			email          string
			want           *auth.Member
		}{
			{"in its organization", f.project.ID, o1.ID, a.EmailAddress, &a},
			{"another organization", f.project.ID, o2.ID, a.EmailAddress, nil},
			{"another project", other.ID, o1.ID, a.EmailAddress, nil},
			{"unknown", f.project.ID, o1.ID, "nobody@example.com", nil},
		} {
			got, err := f.store.MemberByEmail(f.ctx, tc.projectID, tc.org, tc.email)
			if tc.want == nil {
				wantErr(t, err, auth.ErrMemberNotFound, "MemberByEmail: "+tc.name)
				continue
			}
			if err != nil {
				t.Errorf("MemberByEmail: %s: %v", tc.name, err)
				continue
			}
			wantEqual(t, got, *tc.want, "MemberByEmail: "+tc.name)
		}
	}},
	{"UpdateMember stores every field apply changes", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		m := f.newMember(o, func(m *auth.Member) { m.MemberProfile = fullProfile("before") })
		pw := f.newPassword(m)
		must(t, f.store.CreateMember(f.ctx, m, &pw), "CreateMember")
		reg, _ := f.createTOTP(t, m, 1)
		before := f.reread(t, m)

		after := fullProfile("after")
		want := before
		want.EmailAddress, want.ExternalID, want.Status = "renamed-"+short()+"@example.com", "ext-"+short(), auth.StatusPending
		want.MemberProfile = after
		want.FailedAttempts, want.LockCreatedAt, want.LockExpiresAt = 9, f.now, f.now.Add(time.Hour)
		want.UpdatedAt = f.now
		got, err := f.updateMember(f.ctx, f.project.ID, m.ID, func(x *auth.Member) error {
			wantEqual(t, *x, before, "the member apply sees")
			x.EmailAddress, x.ExternalID, x.Status = want.EmailAddress, want.ExternalID, want.Status
			x.MemberProfile = after
			x.FailedAttempts, x.LockCreatedAt, x.LockExpiresAt = 9, f.now, f.now.Add(time.Hour)
			x.UpdatedAt = f.now
			return nil
		})
		must(t, err, "UpdateMember")
		wantEqual(t, got, want, "UpdateMember result")
		if want.TOTPRegistrationID != reg.ID || want.PasswordID != pw.ID {
			t.Errorf("derived ids before update: %q %q, want %q %q", want.TOTPRegistrationID, want.PasswordID, reg.ID, pw.ID)
		}
		f.wantMemberEverywhere(t, want)
		_, err = f.store.MemberByEmail(f.ctx, f.project.ID, o.ID, m.EmailAddress)
		wantErr(t, err, auth.ErrMemberNotFound, "MemberByEmail(old address)")

		// Clearing the lock and the external id.
		got, err = f.updateMember(f.ctx, f.project.ID, m.ID, func(x *auth.Member) error {
			x.ExternalID, x.FailedAttempts, x.LockCreatedAt, x.LockExpiresAt = "", 0, time.Time{}, time.Time{}
			x.MemberProfile = auth.MemberProfile{}
			return nil
		})
		must(t, err, "UpdateMember(clear)")
		want.ExternalID, want.FailedAttempts, want.LockCreatedAt, want.LockExpiresAt = "", 0, time.Time{}, time.Time{}
		want.MemberProfile = auth.MemberProfile{}
		wantEqual(t, got, want, "UpdateMember(clear) result")
		wantEqual(t, f.reread(t, m), want, "member after clearing")
	}},
	{"UpdateMember errors leave the member unchanged", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		m := f.createMember(t, o, func(m *auth.Member) { m.ExternalID = "ext-m-" + short() })
		taken := f.createMember(t, o, func(m *auth.Member) { m.ExternalID = "ext-t-" + short() })
		other := f.otherProject(t)
		x := f.createMember(t, f.createOrganization(t, inProject(other)))
		rename := func(x *auth.Member) error { x.Status = auth.StatusPending; return nil }

		for _, tc := range []struct {
			name      string
			projectID string
			id        string
			apply     func(*auth.Member) error
			want      error
		}{
			{"unknown id", f.project.ID, newID("member"), rename, auth.ErrMemberNotFound},
			{"an external id is not a member id", f.project.ID, m.ExternalID, rename, auth.ErrMemberNotFound},
			{"another project's member", f.project.ID, x.ID, rename, auth.ErrMemberNotFound},
			{"through another project", other.ID, m.ID, rename, auth.ErrMemberNotFound},
			{"used email", f.project.ID, m.ID, func(x *auth.Member) error {
				x.Status, x.EmailAddress = auth.StatusPending, taken.EmailAddress
				return nil
			}, auth.ErrDuplicateMemberEmail},
			{"used external id", f.project.ID, m.ID, func(x *auth.Member) error { x.Status, x.ExternalID = auth.StatusPending, taken.ExternalID; return nil }, auth.ErrDuplicateMemberExtID},
			{"apply refuses", f.project.ID, m.ID, func(x *auth.Member) error { x.Status = auth.StatusPending; return errApply }, errApply},
		} {
			_, err := f.updateMember(f.ctx, tc.projectID, tc.id, tc.apply)
			wantErr(t, err, tc.want, "UpdateMember: "+tc.name)
		}
		for _, mm := range []auth.Member{m, taken, x} {
			wantEqual(t, f.reread(t, mm), mm, "member after refused updates")
		}

		// Another organization's address and external id are free to take.
		y := f.createMember(t, f.createOrganization(t), func(m *auth.Member) { m.ExternalID = "ext-y-" + short() })
		_, err := f.updateMember(f.ctx, f.project.ID, m.ID, func(x *auth.Member) error {
			x.EmailAddress, x.ExternalID = y.EmailAddress, y.ExternalID
			return nil
		})
		wantErr(t, err, nil, "UpdateMember to another organization's address and external id")
	}},
	{"DeleteMember removes the member with everything it owns", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		populate := func() (auth.Member, auth.TOTPRegistration, auth.RecoveryCode, auth.Session, auth.IntermediateSession) {
			m := f.newMember(o, func(m *auth.Member) { m.ExternalID = "ext-" + short() })
			pw := f.newPassword(m)
			must(t, f.store.CreateMember(f.ctx, m, &pw), "CreateMember")
			reg, codes := f.createTOTP(t, m, 4)
			f.createSession(t, m, func(s *auth.Session) { s.StartedAt = f.now.Add(-time.Minute) })
			return m, reg, codes[2], f.createSession(t, m), f.createIST(t, m)
		}
		m, reg, code, s, ist := populate()
		sib, sibReg, _, sibS, sibIST := populate()

		must(t, f.store.DeleteMember(f.ctx, f.project.ID, m.ID), "DeleteMember")
		f.wantMemberGone(t, m, reg, code, s, ist)
		f.wantMemberKept(t, sib, sibReg, sibS, sibIST)
		n, err := f.store.DeleteExpired(f.ctx, f.now.Add(24*time.Hour))
		must(t, err, "DeleteExpired")
		if n != 3 {
			t.Errorf("DeleteExpired after DeleteMember = %d, want 3 (the sibling's two sessions and intermediate session)", n)
		}

		wantErr(t, f.store.DeleteMember(f.ctx, f.project.ID, m.ID), auth.ErrMemberNotFound, "DeleteMember again")
		wantErr(t, f.store.DeleteMember(f.ctx, f.project.ID, newID("member")), auth.ErrMemberNotFound, "DeleteMember(unknown)")
		wantErr(t, f.store.DeleteMember(f.ctx, f.project.ID, sib.ExternalID), auth.ErrMemberNotFound, "DeleteMember(external id)")
		other := f.otherProject(t)
		wantErr(t, f.store.DeleteMember(f.ctx, other.ID, sib.ID), auth.ErrMemberNotFound, "DeleteMember through another project")
		f.reread(t, sib)

		// Its address and external id are free again.
		f.createMember(t, o, func(x *auth.Member) { x.EmailAddress, x.ExternalID = m.EmailAddress, m.ExternalID })
	}},
}

var passwordTests = []test{
	{"SetPassword sets and replaces; Password reads it inside the project", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		m := f.createMember(t, o)
		_, err := f.store.Password(f.ctx, f.project.ID, m.ID)
		wantErr(t, err, auth.ErrNoPassword, "Password before any")

		first := f.newPassword(m)
		must(t, f.store.SetPassword(f.ctx, f.project.ID, first), "SetPassword")
		got, err := f.store.Password(f.ctx, f.project.ID, m.ID)
		must(t, err, "Password")
		wantEqual(t, got, first, "Password")
		if id := f.reread(t, m).PasswordID; id != first.ID {
			t.Errorf("Member.PasswordID = %q, want %q", id, first.ID)
		}

		second := f.newPassword(m)
		second.CreatedAt = f.now
		must(t, f.store.SetPassword(f.ctx, f.project.ID, second), "SetPassword(replace)")
		got, err = f.store.Password(f.ctx, f.project.ID, m.ID)
		must(t, err, "Password")
		wantEqual(t, got, second, "Password after replace")
		if id := f.reread(t, m).PasswordID; id != second.ID {
			t.Errorf("Member.PasswordID after replace = %q, want %q", id, second.ID)
		}

		other := f.otherProject(t)
		_, err = f.store.Password(f.ctx, other.ID, m.ID)
		wantErr(t, err, auth.ErrNoPassword, "Password through another project")
		_, err = f.store.Password(f.ctx, f.project.ID, newID("member"))
		wantErr(t, err, auth.ErrNoPassword, "Password of an unknown member")
	}},
	{"SetPassword for an unknown member is ErrMemberNotFound", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		m := f.createMember(t, o)
		other := f.otherProject(t)

		wantErr(t, f.store.SetPassword(f.ctx, f.project.ID, f.newPassword(auth.Member{ID: newID("member")})), auth.ErrMemberNotFound, "SetPassword(unknown member)")
		wantErr(t, f.store.SetPassword(f.ctx, other.ID, f.newPassword(m)), auth.ErrMemberNotFound, "SetPassword through another project")
		_, err := f.store.Password(f.ctx, f.project.ID, m.ID)
		wantErr(t, err, auth.ErrNoPassword, "Password after a refused SetPassword")
	}},
}

// wantMemberEverywhere checks that every way of reading the member returns want.
func (f *fixture) wantMemberEverywhere(t *testing.T, want auth.Member) {
	t.Helper()
	p := want.ProjectID
	read := func(what string, got auth.Member, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		wantEqual(t, got, want, what)
	}
	got, err := f.store.Member(f.ctx, p, want.OrganizationID, want.ID)
	read("Member(organization, id)", got, err)
	got, err = f.store.Member(f.ctx, p, "", want.ID)
	read(`Member("", id)`, got, err)
	if want.ExternalID != "" {
		got, err = f.store.Member(f.ctx, p, want.OrganizationID, want.ExternalID)
		read("Member(organization, external id)", got, err)
	}
	got, err = f.store.MemberByEmail(f.ctx, p, want.OrganizationID, want.EmailAddress)
	read("MemberByEmail", got, err)
}

package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sparekey/sparekey/internal/auth"
)

var organizationTests = []test{
	{"CreateOrganization round-trips every field, found by id, slug and external id", func(t *testing.T, f *fixture) {
		o := f.newOrganization(func(o *auth.Organization) {
			o.Name = "Acme, Inc. ✓"
			o.ExternalID = "ext-" + short()
			o.OrganizationSettings = fullSettings("acme")
			o.CreatedAt, o.UpdatedAt = f.now.Add(-2*time.Hour), f.now.Add(-time.Hour)
		})
		must(t, f.store.CreateOrganization(f.ctx, o), "CreateOrganization")
		for _, ref := range []string{o.ID, o.Slug, o.ExternalID} {
			got, err := f.store.Organization(f.ctx, f.project.ID, ref)
			must(t, err, "Organization("+ref+")")
			wantEqual(t, got, o, "Organization("+ref+")")
		}
	}},
	{"CreateOrganization with empty settings round-trips", func(t *testing.T, f *fixture) {
		o := f.newOrganization(func(o *auth.Organization) { o.OrganizationSettings = auth.OrganizationSettings{} })
		must(t, f.store.CreateOrganization(f.ctx, o), "CreateOrganization")
		got, err := f.store.Organization(f.ctx, f.project.ID, o.ID)
		must(t, err, "Organization")
		wantEqual(t, got, o, "Organization")
	}},
	{"CreateOrganization refuses a used slug or external id, within the project only", func(t *testing.T, f *fixture) {
		a := f.createOrganization(t, func(o *auth.Organization) { o.ExternalID = "ext-a" })

		sameSlug := f.newOrganization(func(o *auth.Organization) { o.Slug = a.Slug })
		wantErr(t, f.store.CreateOrganization(f.ctx, sameSlug), auth.ErrOrganizationSlugUsed, "CreateOrganization(used slug)")
		sameExt := f.newOrganization(func(o *auth.Organization) { o.ExternalID = a.ExternalID })
		wantErr(t, f.store.CreateOrganization(f.ctx, sameExt), auth.ErrOrganizationExtIDUsed, "CreateOrganization(used external id)")
		for _, o := range []auth.Organization{sameSlug, sameExt} {
			_, err := f.store.Organization(f.ctx, f.project.ID, o.ID)
			wantErr(t, err, auth.ErrOrganizationNotFound, "refused organization stored anyway")
		}

		// "" is no external id, so any number of organizations have it.
		f.createOrganization(t)
		f.createOrganization(t)

		other := f.otherProject(t)
		twin := f.newOrganization(inProject(other), func(o *auth.Organization) { o.Slug, o.ExternalID = a.Slug, a.ExternalID })
		wantErr(t, f.store.CreateOrganization(f.ctx, twin), nil, "CreateOrganization(same slug and external id in another project)")
		got, err := f.store.Organization(f.ctx, f.project.ID, a.Slug)
		must(t, err, "Organization(slug)")
		wantEqual(t, got, a, "Organization(slug) after another project used it")
	}},
	{"Organization resolves an id, then a slug, then an external id", func(t *testing.T, f *fixture) {
		a := f.createOrganization(t, func(o *auth.Organization) { o.ExternalID = "ext-a-" + short() })
		// b's slug and c's external id are a's id; d's external id is b's slug.
		b := f.createOrganization(t, func(o *auth.Organization) { o.Slug = a.ID })
		c := f.createOrganization(t, func(o *auth.Organization) { o.ExternalID = a.ID })
		d := f.createOrganization(t, func(o *auth.Organization) { o.ExternalID = "shared-" + short() })
		e := f.createOrganization(t, func(o *auth.Organization) { o.Slug = d.ExternalID })
		other := f.otherProject(t)
		x := f.createOrganization(t, inProject(other), func(o *auth.Organization) { o.ExternalID = "ext-x-" + short() })
		// Resolution stays inside the project at every step: another project's id is just a slug
		// or an external id here.
		y := f.createOrganization(t, inProject(other))
		z := f.createOrganization(t, func(o *auth.Organization) { o.Slug = y.ID })
		w := f.createOrganization(t, func(o *auth.Organization) { o.ExternalID = x.ID })

		for _, tc := range []struct {
			ref  string
			want *auth.Organization
		}{
			{a.ID, &a}, // also b's slug and c's external id: the id wins
			{a.ExternalID, &a},
			{b.ID, &b},
			{c.ID, &c},
			{c.Slug, &c},
			{d.ExternalID, &e}, // also e's slug: the slug wins over the external id
			{d.ID, &d},
			{d.Slug, &d},
			{y.ID, &z},
			{x.ID, &w},
			{x.Slug, nil},
			{x.ExternalID, nil},
			{newID("organization"), nil},
			{"", nil},
		} {
			got, err := f.store.Organization(f.ctx, f.project.ID, tc.ref)
			if tc.want == nil {
				wantErr(t, err, auth.ErrOrganizationNotFound, "Organization("+tc.ref+")")
				continue
			}
			must(t, err, "Organization("+tc.ref+")")
			if got.ID != tc.want.ID {
				t.Errorf("Organization(%q) = %s (%s), want %s (%s)", tc.ref, got.ID, got.Name, tc.want.ID, tc.want.Name)
			}
		}
		got, err := f.store.Organization(f.ctx, other.ID, x.ExternalID)
		must(t, err, "Organization in its own project")
		wantEqual(t, got, x, "Organization in its own project")
	}},
	{"refs no row can hold are not-found answers, not faults", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		m := f.createMember(t, o)
		f.createSession(t, m)
		for _, ref := range oddRefs() {
			what := func(method string) string { return fmt.Sprintf("%s(%q)", method, truncate(ref)) }
			_, err := f.store.Project(f.ctx, ref)
			wantErr(t, err, auth.ErrProjectNotFound, what("Project"))
			_, err = f.store.Organization(f.ctx, f.project.ID, ref)
			wantErr(t, err, auth.ErrOrganizationNotFound, what("Organization"))
			_, err = f.store.Organization(f.ctx, ref, o.ID)
			wantErr(t, err, auth.ErrOrganizationNotFound, what("Organization, project"))
			_, err = f.store.UpdateOrganization(f.ctx, f.project.ID, ref, func(*auth.Organization) error { return nil })
			wantErr(t, err, auth.ErrOrganizationNotFound, what("UpdateOrganization"))
			wantErr(t, f.store.DeleteOrganization(f.ctx, f.project.ID, ref), auth.ErrOrganizationNotFound, what("DeleteOrganization"))
			_, err = f.store.Member(f.ctx, f.project.ID, o.ID, ref)
			wantErr(t, err, auth.ErrMemberNotFound, what("Member"))
			_, err = f.store.Member(f.ctx, f.project.ID, ref, m.ID)
			wantErr(t, err, auth.ErrMemberNotFound, what("Member, organization"))
			_, err = f.store.Member(f.ctx, f.project.ID, "", ref)
			wantErr(t, err, auth.ErrMemberNotFound, what(`Member, ""`))
			_, err = f.store.MemberByEmail(f.ctx, f.project.ID, o.ID, ref)
			wantErr(t, err, auth.ErrMemberNotFound, what("MemberByEmail"))
			_, err = f.updateMember(f.ctx, f.project.ID, ref, func(*auth.Member) error { return nil })
			wantErr(t, err, auth.ErrMemberNotFound, what("UpdateMember"))
			wantErr(t, f.store.DeleteMember(f.ctx, f.project.ID, ref), auth.ErrMemberNotFound, what("DeleteMember"))
			_, err = f.recordFailedAttempt(f.ctx, f.project.ID, ref, f.now, auth.LockPolicy{Threshold: 3, Duration: time.Hour})
			wantErr(t, err, auth.ErrMemberNotFound, what("RecordFailedAttempt"))
			_, err = f.store.Password(f.ctx, f.project.ID, ref)
			wantErr(t, err, auth.ErrNoPassword, what("Password"))
			_, err = f.store.TOTP(f.ctx, f.project.ID, ref)
			wantErr(t, err, auth.ErrTOTPNotFound, what("TOTP"))
			_, err = f.deleteTOTP(f.ctx, f.project.ID, ref, func(*auth.Member) error { return nil })
			wantErr(t, err, auth.ErrMemberNotFound, what("DeleteTOTP"))
			_, err = f.store.FindRecoveryCode(f.ctx, f.project.ID, ref, randomBytes(32))
			wantErr(t, err, auth.ErrRecoveryCodeRejected, what("FindRecoveryCode"))
			wantErr(t, f.store.ReplaceRecoveryCodes(f.ctx, f.project.ID, ref, nil, newCodes(1)), auth.ErrTOTPNotFound, what("ReplaceRecoveryCodes"))
			if _, codes, err := f.store.RecoveryCodes(f.ctx, f.project.ID, ref); err != nil || len(codes) != 0 {
				t.Errorf("%s = %d codes, %v; want none", what("RecoveryCodes"), len(codes), err)
			}
			_, err = f.store.Session(f.ctx, f.project.ID, ref, f.now)
			wantErr(t, err, auth.ErrSessionNotFound, what("Session"))
			_, err = f.store.UpdateSession(f.ctx, f.project.ID, ref, f.now, func(*auth.Session) error { return nil })
			wantErr(t, err, auth.ErrSessionNotFound, what("UpdateSession"))
			wantErr(t, f.store.DeleteSession(f.ctx, f.project.ID, ref, f.now), auth.ErrSessionNotFound, what("DeleteSession"))
			if ss, err := f.store.Sessions(f.ctx, f.project.ID, ref, f.now); err != nil || len(ss) != 0 {
				t.Errorf("%s = %d sessions, %v; want none", what("Sessions"), len(ss), err)
			}
			wantErr(t, f.store.DeleteMemberSessions(f.ctx, f.project.ID, ref, f.now, nil), nil, what("DeleteMemberSessions"))
			_, err = f.store.Complete(f.ctx, auth.Completion{ProjectID: f.project.ID, MemberID: ref, Now: f.now, NewSession: f.newSession(m)})
			wantErr(t, err, auth.ErrMemberNotFound, what("Complete, member"))
			_, err = f.store.Complete(f.ctx, auth.Completion{ProjectID: f.project.ID, MemberID: m.ID, Now: f.now, SessionID: ref})
			wantErr(t, err, auth.ErrSessionNotFound, what("Complete, session"))
			if keys, err := f.store.SigningKeys(f.ctx, ref); err != nil || len(keys) != 0 {
				t.Errorf("%s = %d keys, %v; want none", what("SigningKeys"), len(keys), err)
			}
		}
		if n := len(f.sessionIDs(t, m)); n != 1 {
			t.Errorf("%d sessions after the odd lookups, want the 1 there was", n)
		}
	}},
	{"UpdateOrganization stores every field apply changes", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t, func(o *auth.Organization) {
			o.ExternalID = "ext-" + short()
			o.OrganizationSettings = fullSettings("before")
		})
		want := o
		want.Name, want.Slug, want.ExternalID = "Renamed", "renamed-"+short(), "ext2-"+short()
		want.OrganizationSettings = fullSettings("after")
		want.UpdatedAt = f.now
		got, err := f.store.UpdateOrganization(f.ctx, f.project.ID, o.ID, func(x *auth.Organization) error {
			wantEqual(t, *x, o, "the organization apply sees")
			x.Name, x.Slug, x.ExternalID = want.Name, want.Slug, want.ExternalID
			x.OrganizationSettings = fullSettings("after")
			x.UpdatedAt = f.now
			return nil
		})
		must(t, err, "UpdateOrganization")
		wantEqual(t, got, want, "UpdateOrganization result")
		for _, ref := range []string{o.ID, want.Slug, want.ExternalID} {
			stored, err := f.store.Organization(f.ctx, f.project.ID, ref)
			must(t, err, "Organization("+ref+")")
			wantEqual(t, stored, want, "Organization("+ref+") after update")
		}
		for _, ref := range []string{o.Slug, o.ExternalID} {
			_, err := f.store.Organization(f.ctx, f.project.ID, ref)
			wantErr(t, err, auth.ErrOrganizationNotFound, "old alias "+ref)
		}

		// Clearing the external id, and keeping one's own slug, are no conflicts.
		cleared, err := f.store.UpdateOrganization(f.ctx, f.project.ID, o.ID, func(x *auth.Organization) error {
			x.ExternalID = ""
			return nil
		})
		must(t, err, "UpdateOrganization(clear external id)")
		want.ExternalID = ""
		wantEqual(t, cleared, want, "UpdateOrganization(clear external id)")
		f.createOrganization(t) // another organization without an external id
		_, err = f.store.UpdateOrganization(f.ctx, f.project.ID, o.ID, func(x *auth.Organization) error {
			x.Name = "Renamed again"
			return nil
		})
		wantErr(t, err, nil, "UpdateOrganization(name only, with no external id)")
	}},
	{"UpdateOrganization errors leave the organization unchanged", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t, func(o *auth.Organization) { o.ExternalID = "ext-o-" + short() })
		taken := f.createOrganization(t, func(o *auth.Organization) { o.ExternalID = "ext-t-" + short() })
		other := f.otherProject(t)
		x := f.createOrganization(t, inProject(other))
		rename := func(x *auth.Organization) error { x.Name = "changed"; return nil }

		for _, tc := range []struct {
			name      string
			projectID string
			id        string
			apply     func(*auth.Organization) error
			want      error
		}{
			{"unknown id", f.project.ID, newID("organization"), rename, auth.ErrOrganizationNotFound},
			{"a slug is not a canonical id", f.project.ID, o.Slug, rename, auth.ErrOrganizationNotFound},
			{"an external id is not a canonical id", f.project.ID, o.ExternalID, rename, auth.ErrOrganizationNotFound},
			{"another project's organization", f.project.ID, x.ID, rename, auth.ErrOrganizationNotFound},
			{"through another project", other.ID, o.ID, rename, auth.ErrOrganizationNotFound},
			{"used slug", f.project.ID, o.ID, func(x *auth.Organization) error { x.Name, x.Slug = "changed", taken.Slug; return nil }, auth.ErrOrganizationSlugUsed},
			{"used external id", f.project.ID, o.ID, func(x *auth.Organization) error { x.Name, x.ExternalID = "changed", taken.ExternalID; return nil }, auth.ErrOrganizationExtIDUsed},
			{"apply refuses", f.project.ID, o.ID, func(x *auth.Organization) error { x.Name = "changed"; return errApply }, errApply},
		} {
			_, err := f.store.UpdateOrganization(f.ctx, tc.projectID, tc.id, tc.apply)
			wantErr(t, err, tc.want, "UpdateOrganization: "+tc.name)
		}
		for _, org := range []auth.Organization{o, taken} {
			got, err := f.store.Organization(f.ctx, f.project.ID, org.ID)
			must(t, err, "Organization")
			wantEqual(t, got, org, "organization after refused updates")
		}
		got, err := f.store.Organization(f.ctx, other.ID, x.ID)
		must(t, err, "Organization(other project)")
		wantEqual(t, got, x, "other project's organization after refused updates")
	}},
	{"DeleteOrganization removes the organization with everything under it", func(t *testing.T, f *fixture) {
		doomed := f.createOrganization(t, func(o *auth.Organization) { o.ExternalID = "ext-" + short() })
		kept := f.createOrganization(t)
		type owned struct {
			m    auth.Member
			reg  auth.TOTPRegistration
			code auth.RecoveryCode
			s    auth.Session
			ist  auth.IntermediateSession
		}
		populate := func(o auth.Organization) []owned {
			var out []owned
			for range 2 {
				m := f.newMember(o, func(m *auth.Member) { m.ExternalID = "ext-" + short() })
				pw := f.newPassword(m)
				must(t, f.store.CreateMember(f.ctx, m, &pw), "CreateMember")
				reg, codes := f.createTOTP(t, m, 3)
				out = append(out, owned{m, reg, codes[1], f.createSession(t, m), f.createIST(t, m)})
			}
			return out
		}
		gone, stay := populate(doomed), populate(kept)

		must(t, f.store.DeleteOrganization(f.ctx, f.project.ID, doomed.ID), "DeleteOrganization")

		for _, ref := range []string{doomed.ID, doomed.Slug, doomed.ExternalID} {
			_, err := f.store.Organization(f.ctx, f.project.ID, ref)
			wantErr(t, err, auth.ErrOrganizationNotFound, "Organization("+ref+") after delete")
		}
		for _, o := range gone {
			f.wantMemberGone(t, o.m, o.reg, o.code, o.s, o.ist)
		}
		for _, o := range stay {
			f.wantMemberKept(t, o.m, o.reg, o.s, o.ist)
		}
		// The rows are gone, not merely hidden: only the kept organization's expire.
		n, err := f.store.DeleteExpired(f.ctx, f.now.Add(24*time.Hour))
		must(t, err, "DeleteExpired")
		if want := int64(2 * len(stay)); n != want {
			t.Errorf("DeleteExpired after DeleteOrganization = %d, want %d (the kept organization's sessions and intermediate sessions)", n, want)
		}

		wantErr(t, f.store.DeleteOrganization(f.ctx, f.project.ID, doomed.ID), auth.ErrOrganizationNotFound, "DeleteOrganization again")
		wantErr(t, f.store.DeleteOrganization(f.ctx, f.project.ID, newID("organization")), auth.ErrOrganizationNotFound, "DeleteOrganization(unknown)")
		wantErr(t, f.store.DeleteOrganization(f.ctx, f.project.ID, kept.Slug), auth.ErrOrganizationNotFound, "DeleteOrganization(slug)")
		other := f.otherProject(t)
		wantErr(t, f.store.DeleteOrganization(f.ctx, other.ID, kept.ID), auth.ErrOrganizationNotFound, "DeleteOrganization through another project")
		if _, err := f.store.Organization(f.ctx, f.project.ID, kept.ID); err != nil {
			t.Errorf("kept organization: %v", err)
		}

		// Its slug and external id are free again.
		again := f.newOrganization(func(o *auth.Organization) { o.Slug, o.ExternalID = doomed.Slug, doomed.ExternalID })
		wantErr(t, f.store.CreateOrganization(f.ctx, again), nil, "CreateOrganization with the deleted organization's slug and external id")
	}},
}

// oddRefs are ids no row has and some databases cannot even hold: NUL, invalid UTF-8, pattern
// characters, quotes, and more text than any column keeps.
func oddRefs() []string {
	return []string{
		"organization-test-\x00" + uuid.NewString(),
		"\xff\xfe\xfd",
		"%", "_", "*", "member-test-%",
		"'; DROP TABLE members; --",
		strings.Repeat("x", 5000),
	}
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// wantMemberGone checks that nothing of a deleted member can be found any more.
func (f *fixture) wantMemberGone(t *testing.T, m auth.Member, reg auth.TOTPRegistration, code auth.RecoveryCode, s auth.Session, ist auth.IntermediateSession) {
	t.Helper()
	p := m.ProjectID
	_, err := f.store.Member(f.ctx, p, "", m.ID)
	wantErr(t, err, auth.ErrMemberNotFound, "Member after delete")
	_, err = f.store.Member(f.ctx, p, m.OrganizationID, m.ExternalID)
	wantErr(t, err, auth.ErrMemberNotFound, "Member(external id) after delete")
	_, err = f.store.MemberByEmail(f.ctx, p, m.OrganizationID, m.EmailAddress)
	wantErr(t, err, auth.ErrMemberNotFound, "MemberByEmail after delete")
	_, err = f.store.Password(f.ctx, p, m.ID)
	wantErr(t, err, auth.ErrNoPassword, "Password after delete")
	_, err = f.store.TOTP(f.ctx, p, m.ID)
	wantErr(t, err, auth.ErrTOTPNotFound, "TOTP after delete")
	_, codes, err := f.store.RecoveryCodes(f.ctx, p, reg.ID)
	must(t, err, "RecoveryCodes after delete")
	if len(codes) != 0 {
		t.Errorf("RecoveryCodes after delete = %d codes, want none", len(codes))
	}
	_, err = f.store.FindRecoveryCode(f.ctx, p, reg.ID, code.MAC)
	wantErr(t, err, auth.ErrRecoveryCodeRejected, "FindRecoveryCode after delete")
	_, err = f.store.Session(f.ctx, p, s.ID, f.now)
	wantErr(t, err, auth.ErrSessionNotFound, "Session after delete")
	_, err = f.store.SessionByToken(f.ctx, p, s.TokenDigest, f.now)
	wantErr(t, err, auth.ErrSessionNotFound, "SessionByToken after delete")
	ss, err := f.store.Sessions(f.ctx, p, m.ID, f.now)
	must(t, err, "Sessions after delete")
	if len(ss) != 0 {
		t.Errorf("Sessions after delete = %d, want none", len(ss))
	}
	_, err = f.store.IntermediateSession(f.ctx, p, ist.TokenDigest, f.now)
	wantErr(t, err, auth.ErrISTNotFound, "IntermediateSession after delete")
}

// wantMemberKept checks that a member next to a deleted one still has everything.
func (f *fixture) wantMemberKept(t *testing.T, m auth.Member, reg auth.TOTPRegistration, s auth.Session, ist auth.IntermediateSession) {
	t.Helper()
	p := m.ProjectID
	got, err := f.store.Member(f.ctx, p, "", m.ID)
	if err != nil {
		t.Errorf("kept member: %v", err)
		return
	}
	if got.TOTPRegistrationID != reg.ID || got.PasswordID == "" {
		t.Errorf("kept member: TOTPRegistrationID %q PasswordID %q, want %q and a password", got.TOTPRegistrationID, got.PasswordID, reg.ID)
	}
	if codes := f.codesOf(t, reg); len(codes) == 0 {
		t.Errorf("kept member lost its recovery codes")
	}
	if _, err := f.store.Session(f.ctx, p, s.ID, f.now); err != nil {
		t.Errorf("kept member's session: %v", err)
	}
	if _, err := f.store.IntermediateSession(f.ctx, p, ist.TokenDigest, f.now); err != nil {
		t.Errorf("kept member's intermediate session: %v", err)
	}
}

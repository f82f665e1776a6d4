package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
)

// codeOwnerTests check Store.CodeOwner: the recovery-code calls' one read.
var codeOwnerTests = []test{
	{"CodeOwner resolves organizations and members as Organization and Member do", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t, func(o *auth.Organization) {
			o.ExternalID = "ext-" + short()
			o.OrganizationSettings = fullSettings("owner")
		})
		m := f.createMember(t, o, func(m *auth.Member) {
			m.ExternalID = "mext-" + short()
			m.MemberProfile = fullProfile("owner")
			m.FailedAttempts = 3
			m.LockCreatedAt, m.LockExpiresAt = f.now.Add(-2*time.Hour), f.now.Add(-time.Hour) // lapsed, not settled
		})
		pw := f.newPassword(m)
		must(t, f.store.SetPassword(f.ctx, f.project.ID, pw), "SetPassword")
		reg, _ := f.createTOTP(t, m, 10)
		wantOrg, err := f.store.Organization(f.ctx, f.project.ID, o.ID)
		must(t, err, "Organization")
		wantMember := f.reread(t, m)

		for _, orgRef := range []string{o.ID, o.Slug, o.ExternalID} {
			for _, memberRef := range []string{m.ID, m.ExternalID} {
				got, err := f.store.CodeOwner(f.ctx, f.project.ID, auth.CodeOwnerQuery{OrganizationRef: orgRef, MemberRef: memberRef, Now: f.now})
				must(t, err, "CodeOwner("+orgRef+", "+memberRef+")")
				wantEqual(t, got.Organization, wantOrg, "Organization")
				wantEqual(t, got.Member, wantMember, "Member")
				if got.Registration == nil {
					t.Fatalf("CodeOwner(%s, %s): no registration", orgRef, memberRef)
				}
				wantEqual(t, *got.Registration, reg, "Registration")
				if got.UnusedPositions != nil || got.Code != nil || got.IST != nil {
					t.Errorf("CodeOwner without asking: unused %v, code %v, IST %v; want none", got.UnusedPositions, got.Code, got.IST)
				}
			}
		}
	}},
	{"CodeOwner takes an id before a slug before an external id, and a member id before an external id", func(t *testing.T, f *fixture) {
		// Organizations whose id, slug and external id collide across them.
		a := f.createOrganization(t)
		f.createOrganization(t, func(o *auth.Organization) { o.Slug = a.ID })
		f.createOrganization(t, func(o *auth.Organization) { o.ExternalID = a.ID })
		d := f.createOrganization(t)
		f.createOrganization(t, func(o *auth.Organization) { o.ExternalID = d.Slug })
		ma := f.createMember(t, a)
		md := f.createMember(t, d)
		for _, tc := range []struct{ ref, wantOrg, member string }{
			{a.ID, a.ID, ma.ID},
			{d.Slug, d.ID, md.ID},
		} {
			got, err := f.store.CodeOwner(f.ctx, f.project.ID, auth.CodeOwnerQuery{OrganizationRef: tc.ref, MemberRef: tc.member, Now: f.now})
			must(t, err, "CodeOwner("+tc.ref+")")
			if got.Organization.ID != tc.wantOrg || got.Member.ID != tc.member {
				t.Errorf("CodeOwner(%s) = %s, %s; want %s, %s", tc.ref, got.Organization.ID, got.Member.ID, tc.wantOrg, tc.member)
			}
			if got.Registration != nil {
				t.Errorf("member without TOTP: Registration = %+v, want nil", got.Registration)
			}
		}
		_, err := f.store.CodeOwner(f.ctx, f.project.ID, auth.CodeOwnerQuery{OrganizationRef: a.ID, MemberRef: md.ID, Now: f.now})
		wantErr(t, err, auth.ErrMemberNotFound, "CodeOwner(a, a member of d)")

		// A member whose external id is another member's id: the id wins inside the organization.
		x := f.createMember(t, a)
		f.createMember(t, a, func(m *auth.Member) { m.ExternalID = x.ID })
		got, err := f.store.CodeOwner(f.ctx, f.project.ID, auth.CodeOwnerQuery{OrganizationRef: a.ID, MemberRef: x.ID, Now: f.now})
		must(t, err, "CodeOwner(x's id)")
		if got.Member.ID != x.ID {
			t.Errorf("CodeOwner(x's id) = member %s, want %s", got.Member.ID, x.ID)
		}
	}},
	{"CodeOwner errors", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		m := f.createMember(t, o)
		f.createTOTP(t, m, 3)
		other := f.otherProject(t)
		xo := f.createOrganization(t, inProject(other))
		xm := f.createMember(t, xo)
		for _, tc := range []struct {
			name            string
			projectID, o, m string
			want            error
		}{
			{"unknown organization", f.project.ID, newID("organization"), m.ID, auth.ErrOrganizationNotFound},
			{"another project's organization", f.project.ID, xo.ID, xm.ID, auth.ErrOrganizationNotFound},
			{"through another project", other.ID, o.ID, m.ID, auth.ErrOrganizationNotFound},
			{"unknown member", f.project.ID, o.ID, newID("member"), auth.ErrMemberNotFound},
			{"another project's member", f.project.ID, o.ID, xm.ID, auth.ErrMemberNotFound},
		} {
			_, err := f.store.CodeOwner(f.ctx, tc.projectID, auth.CodeOwnerQuery{OrganizationRef: tc.o, MemberRef: tc.m, Now: f.now})
			wantErr(t, err, tc.want, "CodeOwner: "+tc.name)
		}
		for _, ref := range oddRefs() {
			_, err := f.store.CodeOwner(f.ctx, f.project.ID, auth.CodeOwnerQuery{OrganizationRef: ref, MemberRef: m.ID, Now: f.now})
			wantErr(t, err, auth.ErrOrganizationNotFound, "CodeOwner(organization "+truncate(ref)+")")
			_, err = f.store.CodeOwner(f.ctx, f.project.ID, auth.CodeOwnerQuery{OrganizationRef: o.ID, MemberRef: ref, Now: f.now})
			wantErr(t, err, auth.ErrMemberNotFound, "CodeOwner(member "+truncate(ref)+")")
		}
	}},
	{"RecordedCodeOwner reads what CodeOwner reads and records record's events with it, or nothing", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		m := f.createMember(t, o)
		_, codes := f.createTOTP(t, m, 10)
		_, err := f.store.Complete(f.ctx, auth.Completion{ProjectID: f.project.ID, MemberID: m.ID, Now: f.now, SpendRecoveryCode: codes[3].ID, NewSession: f.newSession(m)})
		must(t, err, "Complete (spend a code)")
		q := auth.CodeOwnerQuery{OrganizationRef: o.ID, MemberRef: m.ID, UnusedCodes: true, Now: f.now}
		want, err := f.store.CodeOwner(f.ctx, f.project.ID, q)
		must(t, err, "CodeOwner")

		var seen []auth.CodeOwner
		read := f.newEvent(&m, auth.EventRecoveryCodesRead, map[string]any{"count": float64(9)})
		got, err := f.store.RecordedCodeOwner(f.ctx, f.project.ID, q, func(owner auth.CodeOwner) ([]auth.Event, error) {
			seen = append(seen, owner)
			return []auth.Event{read}, nil
		})
		must(t, err, "RecordedCodeOwner")
		wantEqual(t, got, want, "RecordedCodeOwner's owner")
		if len(seen) == 0 {
			t.Fatal("RecordedCodeOwner did not call record")
		}
		wantEqual(t, seen[len(seen)-1], want, "the owner record was given")
		f.wantEvents(t, m.ID, []auth.Event{read}, "RecordedCodeOwner")

		// A refusal of record, or any other error of it, records nothing and is returned as it is.
		boom := errors.New("record failed")
		for _, refusal := range []error{auth.ErrRecoveryCodesNotRetrievable, boom} {
			_, err = f.store.RecordedCodeOwner(f.ctx, f.project.ID, q, func(auth.CodeOwner) ([]auth.Event, error) {
				return nil, refusal
			})
			if !errors.Is(err, refusal) {
				t.Errorf("RecordedCodeOwner with record failing with %v: err = %v", refusal, err)
			}
		}
		f.wantEvents(t, m.ID, []auth.Event{read}, "after refusals")

		// What the read refuses, record is not asked about.
		for _, tc := range []struct {
			name string
			q    auth.CodeOwnerQuery
			want error
		}{
			{"unknown organization", auth.CodeOwnerQuery{OrganizationRef: newID("organization"), MemberRef: m.ID, Now: f.now}, auth.ErrOrganizationNotFound},
			{"unknown member", auth.CodeOwnerQuery{OrganizationRef: o.ID, MemberRef: newID("member"), Now: f.now}, auth.ErrMemberNotFound},
			{"an organization no row can hold", auth.CodeOwnerQuery{OrganizationRef: oddRefs()[0], MemberRef: m.ID, Now: f.now}, auth.ErrOrganizationNotFound},
		} {
			_, err := f.store.RecordedCodeOwner(f.ctx, f.project.ID, tc.q, func(auth.CodeOwner) ([]auth.Event, error) {
				t.Errorf("RecordedCodeOwner: %s: record called", tc.name)
				return nil, nil
			})
			wantErr(t, err, tc.want, "RecordedCodeOwner: "+tc.name)
		}
	}},
	{"CodeOwner lists the unused positions and finds a code by MAC, used or not", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		m := f.createMember(t, o)
		reg, codes := f.createTOTP(t, m, 10)
		for _, i := range []int{7, 2} {
			_, err := f.store.Complete(f.ctx, auth.Completion{ProjectID: f.project.ID, MemberID: m.ID, Now: f.now, SpendRecoveryCode: codes[i].ID, NewSession: f.newSession(m)})
			must(t, err, "Complete (spend a code)")
		}
		q := auth.CodeOwnerQuery{OrganizationRef: o.ID, MemberRef: m.ID, UnusedCodes: true, Now: f.now}
		got, err := f.store.CodeOwner(f.ctx, f.project.ID, q)
		must(t, err, "CodeOwner(UnusedCodes)")
		wantEqual(t, got.UnusedPositions, []int{0, 1, 3, 4, 5, 6, 8, 9}, "UnusedPositions")
		wantEqual(t, got.Registration.SealedCodes, reg.SealedCodes, "the sealed set read with them")

		for _, tc := range []struct {
			name string
			mac  []byte
			want *auth.RecoveryCode
		}{
			{"an unused code", codes[4].MAC, &codes[4]},
			{"a used code", codes[7].MAC, &auth.RecoveryCode{ID: codes[7].ID, Position: 7, MAC: codes[7].MAC, UsedAt: f.now}},
			{"no such code", randomBytes(32), nil},
		} {
			q := auth.CodeOwnerQuery{OrganizationRef: o.ID, MemberRef: m.ID, CodeMAC: tc.mac, Now: f.now}
			got, err := f.store.CodeOwner(f.ctx, f.project.ID, q)
			must(t, err, "CodeOwner(CodeMAC): "+tc.name)
			wantEqual(t, got.Code, tc.want, "CodeOwner(CodeMAC): "+tc.name+": Code") // nil when there is none
		}

		// Another member's code is not this member's.
		n := f.createMember(t, o)
		_, ncodes := f.createTOTP(t, n, 2)
		got, err = f.store.CodeOwner(f.ctx, f.project.ID, auth.CodeOwnerQuery{OrganizationRef: o.ID, MemberRef: m.ID, CodeMAC: ncodes[0].MAC, Now: f.now})
		must(t, err, "CodeOwner(another member's MAC)")
		if got.Code != nil {
			t.Errorf("another member's code: Code = %+v, want nil", got.Code)
		}

		// No registration: no positions, no code.
		bare := f.createMember(t, o)
		got, err = f.store.CodeOwner(f.ctx, f.project.ID, auth.CodeOwnerQuery{OrganizationRef: o.ID, MemberRef: bare.ID, UnusedCodes: true, CodeMAC: codes[0].MAC, Now: f.now})
		must(t, err, "CodeOwner(member without registration)")
		if got.Registration != nil || len(got.UnusedPositions) != 0 || got.Code != nil {
			t.Errorf("member without registration: %+v, %v, %+v; want nothing", got.Registration, got.UnusedPositions, got.Code)
		}

		// Every code spent: an empty list, not an absent one.
		all := f.createMember(t, o)
		_, acodes := f.createTOTP(t, all, 1)
		_, err = f.store.Complete(f.ctx, auth.Completion{ProjectID: f.project.ID, MemberID: all.ID, Now: f.now, SpendRecoveryCode: acodes[0].ID, NewSession: f.newSession(all)})
		must(t, err, "Complete (spend the only code)")
		got, err = f.store.CodeOwner(f.ctx, f.project.ID, auth.CodeOwnerQuery{OrganizationRef: o.ID, MemberRef: all.ID, UnusedCodes: true, Now: f.now})
		must(t, err, "CodeOwner(all spent)")
		if got.UnusedPositions == nil || len(got.UnusedPositions) != 0 {
			t.Errorf("all spent: UnusedPositions = %#v, want []int{}", got.UnusedPositions)
		}
	}},
	{"CodeOwner finds a live intermediate session of the project, whoever's it is", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		m := f.createMember(t, o)
		n := f.createMember(t, f.createOrganization(t))
		f.createTOTP(t, m, 2)
		own := f.createIST(t, m)
		others := f.createIST(t, n)
		expired := f.createIST(t, m, func(i *auth.IntermediateSession) { i.CreatedAt, i.ExpiresAt = f.now.Add(-11*time.Minute), f.now })
		other := f.otherProject(t)
		xm := f.createMember(t, f.createOrganization(t, inProject(other)))
		foreign := f.createIST(t, xm)

		for _, tc := range []struct {
			name   string
			digest []byte
			want   *auth.IntermediateSession
		}{
			{"the member's own", own.TokenDigest, &own},
			{"another member's", others.TokenDigest, &others},
			{"expired at now", expired.TokenDigest, nil},
			{"another project's", foreign.TokenDigest, nil},
			{"unknown", digest(), nil},
		} {
			got, err := f.store.CodeOwner(f.ctx, f.project.ID, auth.CodeOwnerQuery{OrganizationRef: o.ID, MemberRef: m.ID, ISTDigest: tc.digest, Now: f.now})
			must(t, err, "CodeOwner(ISTDigest): "+tc.name)
			wantEqual(t, got.IST, tc.want, "CodeOwner(ISTDigest): "+tc.name+": IST") // nil when there is none
		}
	}},
}

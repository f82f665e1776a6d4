package storetest

import (
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
)

// bulkTests check auth.BulkLoader, which both stores implement: what it loads reads back exactly
// as what the one-by-one methods write, and a refused batch leaves nothing behind.
var bulkTests = []test{
	{"LoadEnrolledMembers stores members, registrations and codes as the one-by-one methods read them", func(t *testing.T, f *fixture) {
		loader := bulkLoader(t, f)
		orgs := []auth.Organization{f.createOrganization(t), f.createOrganization(t)}
		var batch []auth.EnrolledMember
		for i := range 3 {
			m := f.newMember(orgs[i%2], func(m *auth.Member) {
				m.MemberProfile = fullProfile(short())
				if i == 1 {
					m.ExternalID = "ext-" + short()
				}
			})
			reg := f.newTOTP(m)
			codes := newCodes(10)
			codes[3].UsedAt = f.now.Add(-time.Minute)
			batch = append(batch, auth.EnrolledMember{Member: m, Registration: reg, Codes: codes})
		}
		must(t, loader.LoadEnrolledMembers(f.ctx, f.project.ID, batch), "LoadEnrolledMembers")
		for _, e := range batch {
			want := e.Member
			want.TOTPRegistrationID = e.Registration.ID
			wantEqual(t, f.reread(t, e.Member), want, "Member after LoadEnrolledMembers")
			reg, err := f.store.TOTP(f.ctx, f.project.ID, e.Member.ID)
			must(t, err, "TOTP after LoadEnrolledMembers")
			wantEqual(t, reg, e.Registration, "TOTP after LoadEnrolledMembers")
			wantEqual(t, f.codesOf(t, reg), e.Codes, "codes after LoadEnrolledMembers")
		}

		// A batch with a taken address, or an organization of another project, is refused whole.
		fresh := f.newMember(orgs[0])
		taken := f.newMember(orgs[0], func(m *auth.Member) { m.EmailAddress = batch[0].Member.EmailAddress })
		foreign := f.newMember(f.createOrganization(t, inProject(f.otherProject(t))), func(m *auth.Member) { m.ProjectID = f.project.ID })
		for _, tc := range []struct {
			name   string
			second auth.Member
			want   *auth.Error
		}{
			{"a taken address", taken, auth.ErrDuplicateMemberEmail},
			{"an organization of another project", foreign, auth.ErrOrganizationNotFound},
		} {
			refused := []auth.EnrolledMember{
				{Member: fresh, Registration: f.newTOTP(fresh), Codes: newCodes(10)},
				{Member: tc.second, Registration: f.newTOTP(tc.second), Codes: newCodes(10)},
			}
			wantErr(t, loader.LoadEnrolledMembers(f.ctx, f.project.ID, refused), tc.want, "LoadEnrolledMembers with "+tc.name)
			_, err := f.store.Member(f.ctx, f.project.ID, "", fresh.ID)
			wantErr(t, err, auth.ErrMemberNotFound, "the batch's other member after a refusal for "+tc.name)
		}
	}},
	{"LoadIntermediateSessions stores sessions as IntermediateSession reads them", func(t *testing.T, f *fixture) {
		loader := bulkLoader(t, f)
		m := f.createMember(t, f.createOrganization(t))
		ists := []auth.IntermediateSession{f.newIST(m), f.newIST(m)}
		must(t, loader.LoadIntermediateSessions(f.ctx, ists), "LoadIntermediateSessions")
		for _, want := range ists {
			got, err := f.store.IntermediateSession(f.ctx, f.project.ID, want.TokenDigest, f.now)
			must(t, err, "IntermediateSession after LoadIntermediateSessions")
			wantEqual(t, got, want, "IntermediateSession after LoadIntermediateSessions")
		}
	}},
}

func bulkLoader(t *testing.T, f *fixture) auth.BulkLoader {
	t.Helper()
	loader, ok := f.store.(auth.BulkLoader)
	if !ok {
		t.Fatalf("%T does not implement auth.BulkLoader; both stores do", f.store)
	}
	return loader
}

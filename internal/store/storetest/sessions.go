package storetest

import (
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
)

// fullClaims are custom claims with every JSON shape.
func fullClaims(tag string) map[string]any {
	return map[string]any{
		"tag":    tag,
		"count":  float64(3),
		"ratio":  0.25,
		"admin":  true,
		"none":   nil,
		"list":   []any{"a", float64(2), map[string]any{"k": tag}},
		"nested": map[string]any{"org": map[string]any{"tier": "gold", "seats": float64(40)}, "tags": []any{}},
	}
}

var istTests = []test{
	{"CreateIntermediateSession round-trips; expired, unknown and foreign ones are not found", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		reg, _ := f.createTOTP(t, m, 1)
		ist := f.createIST(t, m, func(i *auth.IntermediateSession) {
			i.Factors = []auth.Factor{passwordFactor(f.now.Add(-time.Minute)), totpFactor(f.now, reg.ID)}
			i.CreatedAt = f.now.Add(-time.Minute)
		})
		other := f.otherProject(t)

		for _, at := range []time.Time{f.now, ist.ExpiresAt.Add(-time.Second)} {
			got, err := f.store.IntermediateSession(f.ctx, f.project.ID, ist.TokenDigest, at)
			must(t, err, "IntermediateSession")
			wantEqual(t, got, ist, "IntermediateSession at "+at.String())
		}
		for _, tc := range []struct {
			name      string
			projectID string
			digest    []byte
			at        time.Time
		}{
			{"at its expiry", f.project.ID, ist.TokenDigest, ist.ExpiresAt},
			{"after its expiry", f.project.ID, ist.TokenDigest, ist.ExpiresAt.Add(time.Hour)},
			{"unknown digest", f.project.ID, digest(), f.now},
			{"through another project", other.ID, ist.TokenDigest, f.now},
		} {
			_, err := f.store.IntermediateSession(f.ctx, tc.projectID, tc.digest, tc.at)
			wantErr(t, err, auth.ErrISTNotFound, "IntermediateSession: "+tc.name)
		}
	}},
	{"UpdateIntermediateSession stores what apply changes", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		reg, _ := f.createTOTP(t, m, 1)
		ist := f.createIST(t, m)
		later := f.now.Add(time.Minute)

		want := ist
		want.Factors = append([]auth.Factor{}, ist.Factors...)
		want.Factors[0].LastAuthenticatedAt = later
		want.Factors = append(want.Factors, totpFactor(later, reg.ID))
		want.ExpiresAt = later.Add(10 * time.Minute)
		got, err := f.store.UpdateIntermediateSession(f.ctx, f.project.ID, ist.TokenDigest, later, func(x *auth.IntermediateSession) error {
			wantEqual(t, *x, ist, "the intermediate session apply sees")
			x.Factors = append([]auth.Factor{}, x.Factors...)
			x.Factors[0].LastAuthenticatedAt = later
			x.Factors = append(x.Factors, totpFactor(later, reg.ID))
			x.ExpiresAt = later.Add(10 * time.Minute)
			return nil
		})
		must(t, err, "UpdateIntermediateSession")
		wantEqual(t, got, want, "UpdateIntermediateSession result")
		stored, err := f.store.IntermediateSession(f.ctx, f.project.ID, ist.TokenDigest, later)
		must(t, err, "IntermediateSession")
		wantEqual(t, stored, want, "IntermediateSession after update")
		// The new expiry is the one that counts.
		stored, err = f.store.IntermediateSession(f.ctx, f.project.ID, ist.TokenDigest, ist.ExpiresAt.Add(time.Second))
		must(t, err, "IntermediateSession past its old expiry")
		wantEqual(t, stored, want, "IntermediateSession past its old expiry")
	}},
	{"UpdateIntermediateSession errors leave it unchanged", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		ist := f.createIST(t, m)
		other := f.otherProject(t)
		extend := func(x *auth.IntermediateSession) error { x.ExpiresAt = x.ExpiresAt.Add(time.Hour); return nil }
		for _, tc := range []struct {
			name      string
			projectID string
			digest    []byte
			at        time.Time
			apply     func(*auth.IntermediateSession) error
			want      error
		}{
			{"expired", f.project.ID, ist.TokenDigest, ist.ExpiresAt, extend, auth.ErrISTNotFound},
			{"unknown", f.project.ID, digest(), f.now, extend, auth.ErrISTNotFound},
			{"through another project", other.ID, ist.TokenDigest, f.now, extend, auth.ErrISTNotFound},
			{"apply refuses", f.project.ID, ist.TokenDigest, f.now, func(x *auth.IntermediateSession) error { x.ExpiresAt = x.ExpiresAt.Add(time.Hour); return errApply }, errApply},
		} {
			_, err := f.store.UpdateIntermediateSession(f.ctx, tc.projectID, tc.digest, tc.at, tc.apply)
			wantErr(t, err, tc.want, "UpdateIntermediateSession: "+tc.name)
		}
		got, err := f.store.IntermediateSession(f.ctx, f.project.ID, ist.TokenDigest, f.now)
		must(t, err, "IntermediateSession")
		wantEqual(t, got, ist, "intermediate session after refused updates")
	}},
}

var sessionTests = []test{
	{"a session round-trips every field through Session, SessionByToken and Sessions", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		reg, codes := f.createTOTP(t, m, 2)
		s := f.newSession(m, func(s *auth.Session) {
			s.StartedAt, s.LastAccessedAt, s.ExpiresAt = f.now.Add(-time.Hour), f.now.Add(-time.Minute), f.now.Add(7*24*time.Hour)
			s.Factors = []auth.Factor{passwordFactor(f.now.Add(-time.Hour)), totpFactor(f.now.Add(-30*time.Minute), reg.ID), recoveryFactor(f.now.Add(-time.Minute), codes[0].ID)}
			s.CustomClaims = fullClaims("s")
		})
		done, err := f.store.Complete(f.ctx, auth.Completion{ProjectID: f.project.ID, MemberID: m.ID, Now: f.now, NewSession: s})
		must(t, err, "Complete")
		wantEqual(t, done.Session, s, "Completed.Session")

		got, err := f.store.Session(f.ctx, f.project.ID, s.ID, f.now)
		must(t, err, "Session")
		wantEqual(t, got, s, "Session")
		got, err = f.store.SessionByToken(f.ctx, f.project.ID, s.TokenDigest, f.now)
		must(t, err, "SessionByToken")
		wantEqual(t, got, s, "SessionByToken")
		list, err := f.store.Sessions(f.ctx, f.project.ID, m.ID, f.now)
		must(t, err, "Sessions")
		wantEqual(t, list, []auth.Session{s}, "Sessions")
	}},
	{"expired sessions are absent to every method", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		s := f.createSession(t, m)
		end := s.ExpiresAt
		touch := func(x *auth.Session) error { x.LastAccessedAt = x.LastAccessedAt.Add(time.Second); return nil }

		// A second before the end, it is live.
		last := end.Add(-time.Second)
		if _, err := f.store.Session(f.ctx, f.project.ID, s.ID, last); err != nil {
			t.Errorf("Session a second before expiry: %v", err)
		}
		if _, err := f.store.SessionByToken(f.ctx, f.project.ID, s.TokenDigest, last); err != nil {
			t.Errorf("SessionByToken a second before expiry: %v", err)
		}
		if ss, err := f.store.Sessions(f.ctx, f.project.ID, m.ID, last); err != nil || len(ss) != 1 {
			t.Errorf("Sessions a second before expiry = %d, %v; want 1", len(ss), err)
		}

		for _, at := range []time.Time{end, end.Add(time.Hour)} {
			_, err := f.store.Session(f.ctx, f.project.ID, s.ID, at)
			wantErr(t, err, auth.ErrSessionNotFound, "Session at "+at.String())
			_, err = f.store.SessionByToken(f.ctx, f.project.ID, s.TokenDigest, at)
			wantErr(t, err, auth.ErrSessionNotFound, "SessionByToken at "+at.String())
			ss, err := f.store.Sessions(f.ctx, f.project.ID, m.ID, at)
			if err != nil || len(ss) != 0 {
				t.Errorf("Sessions at %v = %d, %v; want none", at, len(ss), err)
			}
			_, err = f.store.UpdateSession(f.ctx, f.project.ID, s.ID, at, touch)
			wantErr(t, err, auth.ErrSessionNotFound, "UpdateSession at "+at.String())
			wantErr(t, f.store.DeleteSession(f.ctx, f.project.ID, s.ID, at), auth.ErrSessionNotFound, "DeleteSession at "+at.String())
			_, err = f.store.Complete(f.ctx, auth.Completion{ProjectID: f.project.ID, MemberID: m.ID, Now: at, SessionID: s.ID, ApplySession: touch})
			wantErr(t, err, auth.ErrSessionNotFound, "Complete(SessionID) at "+at.String())
		}
		// Refusals at expiry changed nothing.
		got, err := f.store.Session(f.ctx, f.project.ID, s.ID, f.now)
		must(t, err, "Session")
		wantEqual(t, got, s, "session after the refusals")
	}},
	{"Sessions lists the member's live sessions, oldest first, inside the project", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		m, n := f.createMember(t, o), f.createMember(t, o)
		started := func(ago time.Duration) func(*auth.Session) {
			return func(s *auth.Session) { s.StartedAt, s.LastAccessedAt = f.now.Add(-ago), f.now.Add(-ago) }
		}
		s1 := f.createSession(t, m, started(time.Hour))
		s3 := f.createSession(t, m, started(3*time.Hour))
		s2 := f.createSession(t, m, started(2*time.Hour))
		f.createSession(t, m, started(4*time.Hour), func(s *auth.Session) { s.ExpiresAt = f.now })
		f.createSession(t, n)

		got, err := f.store.Sessions(f.ctx, f.project.ID, m.ID, f.now)
		must(t, err, "Sessions")
		wantEqual(t, got, []auth.Session{s3, s2, s1}, "Sessions")

		other := f.otherProject(t)
		for _, tc := range []struct {
			name, projectID, memberID string
		}{
			{"through another project", other.ID, m.ID},
			{"unknown member", f.project.ID, newID("member")},
		} {
			got, err := f.store.Sessions(f.ctx, tc.projectID, tc.memberID, f.now)
			if err != nil || len(got) != 0 {
				t.Errorf("Sessions: %s = %d, %v; want none", tc.name, len(got), err)
			}
		}
	}},
	{"Session and SessionByToken are scoped by project", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		s := f.createSession(t, m)
		other := f.otherProject(t)
		_, err := f.store.Session(f.ctx, other.ID, s.ID, f.now)
		wantErr(t, err, auth.ErrSessionNotFound, "Session through another project")
		_, err = f.store.SessionByToken(f.ctx, other.ID, s.TokenDigest, f.now)
		wantErr(t, err, auth.ErrSessionNotFound, "SessionByToken through another project")
		_, err = f.store.Session(f.ctx, f.project.ID, newID("member-session"), f.now)
		wantErr(t, err, auth.ErrSessionNotFound, "Session(unknown)")
		_, err = f.store.SessionByToken(f.ctx, f.project.ID, digest(), f.now)
		wantErr(t, err, auth.ErrSessionNotFound, "SessionByToken(unknown)")
		_, err = f.store.Session(f.ctx, f.project.ID, "", f.now)
		wantErr(t, err, auth.ErrSessionNotFound, `Session("")`)
	}},
	{"UpdateSession stores what apply changes", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		reg, _ := f.createTOTP(t, m, 1)
		s := f.createSession(t, m, func(s *auth.Session) { s.CustomClaims = fullClaims("before") })
		later := f.now.Add(5 * time.Minute)

		want := s
		want.LastAccessedAt, want.ExpiresAt = later, later.Add(2*time.Hour)
		want.Factors = []auth.Factor{s.Factors[0], totpFactor(later, reg.ID)}
		want.CustomClaims = fullClaims("after")
		got, err := f.store.UpdateSession(f.ctx, f.project.ID, s.ID, later, func(x *auth.Session) error {
			wantEqual(t, *x, s, "the session apply sees")
			x.LastAccessedAt, x.ExpiresAt = later, later.Add(2*time.Hour)
			x.Factors = []auth.Factor{x.Factors[0], totpFactor(later, reg.ID)}
			x.CustomClaims = fullClaims("after")
			return nil
		})
		must(t, err, "UpdateSession")
		wantEqual(t, got, want, "UpdateSession result")
		stored, err := f.store.Session(f.ctx, f.project.ID, s.ID, later)
		must(t, err, "Session")
		wantEqual(t, stored, want, "Session after update")
		// The new expiry is the one that counts.
		if _, err := f.store.SessionByToken(f.ctx, f.project.ID, s.TokenDigest, s.ExpiresAt.Add(time.Minute)); err != nil {
			t.Errorf("SessionByToken past the old expiry: %v", err)
		}
	}},
	{"UpdateSession errors leave the session unchanged", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		s := f.createSession(t, m)
		other := f.otherProject(t)
		touch := func(x *auth.Session) error { x.LastAccessedAt = x.LastAccessedAt.Add(time.Minute); return nil }
		for _, tc := range []struct {
			name      string
			projectID string
			id        string
			apply     func(*auth.Session) error
			want      error
		}{
			{"unknown", f.project.ID, newID("member-session"), touch, auth.ErrSessionNotFound},
			{"through another project", other.ID, s.ID, touch, auth.ErrSessionNotFound},
			{"apply refuses", f.project.ID, s.ID, func(x *auth.Session) error { x.LastAccessedAt = x.LastAccessedAt.Add(time.Minute); return errApply }, errApply},
		} {
			_, err := f.store.UpdateSession(f.ctx, tc.projectID, tc.id, f.now, tc.apply)
			wantErr(t, err, tc.want, "UpdateSession: "+tc.name)
		}
		got, err := f.store.Session(f.ctx, f.project.ID, s.ID, f.now)
		must(t, err, "Session")
		wantEqual(t, got, s, "session after refused updates")
	}},
	{"DeleteSession revokes one live session", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		s, keep := f.createSession(t, m), f.createSession(t, m)
		other := f.otherProject(t)

		wantErr(t, f.store.DeleteSession(f.ctx, other.ID, s.ID, f.now), auth.ErrSessionNotFound, "DeleteSession through another project")
		wantErr(t, f.store.DeleteSession(f.ctx, f.project.ID, newID("member-session"), f.now), auth.ErrSessionNotFound, "DeleteSession(unknown)")
		must(t, f.store.DeleteSession(f.ctx, f.project.ID, s.ID, f.now), "DeleteSession")
		_, err := f.store.Session(f.ctx, f.project.ID, s.ID, f.now)
		wantErr(t, err, auth.ErrSessionNotFound, "Session after delete")
		_, err = f.store.SessionByToken(f.ctx, f.project.ID, s.TokenDigest, f.now)
		wantErr(t, err, auth.ErrSessionNotFound, "SessionByToken after delete")
		wantErr(t, f.store.DeleteSession(f.ctx, f.project.ID, s.ID, f.now), auth.ErrSessionNotFound, "DeleteSession again")
		wantEqual(t, f.sessionIDs(t, m), []string{keep.ID}, "sessions left")
	}},
	{"DeleteMemberSessions revokes every session of the member only", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		m, n := f.createMember(t, o), f.createMember(t, o)
		f.createSession(t, m)
		f.createSession(t, m, func(s *auth.Session) { s.StartedAt = f.now.Add(-time.Hour) })
		f.createSession(t, m, func(s *auth.Session) { s.StartedAt, s.ExpiresAt = f.now.Add(-2*time.Hour), f.now.Add(-time.Hour) }) // expired
		kept := f.createSession(t, n)
		ist := f.createIST(t, m)
		other := f.otherProject(t)

		must(t, f.store.DeleteMemberSessions(f.ctx, other.ID, m.ID, f.now, nil), "DeleteMemberSessions through another project")
		if got := f.sessionIDs(t, m); len(got) != 2 {
			t.Errorf("DeleteMemberSessions through another project revoked sessions: %d left, want 2", len(got))
		}
		must(t, f.store.DeleteMemberSessions(f.ctx, f.project.ID, m.ID, f.now, nil), "DeleteMemberSessions")
		if got := f.sessionIDs(t, m); len(got) != 0 {
			t.Errorf("sessions left after DeleteMemberSessions: %v", got)
		}
		wantEqual(t, f.sessionIDs(t, n), []string{kept.ID}, "the other member's sessions")
		if _, err := f.store.IntermediateSession(f.ctx, f.project.ID, ist.TokenDigest, f.now); err != nil {
			t.Errorf("DeleteMemberSessions removed an intermediate session: %v", err)
		}
		must(t, f.store.DeleteMemberSessions(f.ctx, f.project.ID, m.ID, f.now, nil), "DeleteMemberSessions with none left")
		// Every session means the expired one too: only n's session and m's IST remain to expire.
		count, err := f.store.DeleteExpired(f.ctx, f.now.Add(48*time.Hour))
		must(t, err, "DeleteExpired")
		if count != 2 {
			t.Errorf("DeleteExpired after DeleteMemberSessions = %d, want 2", count)
		}
	}},
	{"DeleteExpired removes sessions and intermediate sessions with expires_at <= now, in every project", func(t *testing.T, f *fixture) {
		other := f.otherProject(t)
		var live []auth.Session
		var liveISTs []auth.IntermediateSession
		for _, p := range []auth.Project{f.project, other} {
			m := f.createMember(t, f.createOrganization(t, inProject(p)))
			for _, end := range []time.Time{f.now.Add(-time.Hour), f.now.Add(-time.Second), f.now} {
				f.createSession(t, m, func(s *auth.Session) {
					s.StartedAt, s.LastAccessedAt, s.ExpiresAt = end.Add(-2*time.Hour), end.Add(-2*time.Hour), end
				})
				f.createIST(t, m, func(i *auth.IntermediateSession) { i.CreatedAt, i.ExpiresAt = end.Add(-10*time.Minute), end })
			}
			live = append(live, f.createSession(t, m, func(s *auth.Session) { s.ExpiresAt = f.now.Add(time.Second) }))
			liveISTs = append(liveISTs, f.createIST(t, m, func(i *auth.IntermediateSession) { i.ExpiresAt = f.now.Add(time.Second) }))
		}

		n, err := f.store.DeleteExpired(f.ctx, f.now)
		must(t, err, "DeleteExpired")
		if n != 12 {
			t.Errorf("DeleteExpired = %d, want 12 (3 sessions and 3 intermediate sessions in each of 2 projects)", n)
		}
		for _, s := range live {
			if _, err := f.store.Session(f.ctx, s.ProjectID, s.ID, f.now); err != nil {
				t.Errorf("live session after DeleteExpired: %v", err)
			}
		}
		for _, i := range liveISTs {
			if _, err := f.store.IntermediateSession(f.ctx, i.ProjectID, i.TokenDigest, f.now); err != nil {
				t.Errorf("live intermediate session after DeleteExpired: %v", err)
			}
		}
		n, err = f.store.DeleteExpired(f.ctx, f.now)
		must(t, err, "DeleteExpired again")
		if n != 0 {
			t.Errorf("DeleteExpired again = %d, want 0", n)
		}
		n, err = f.store.DeleteExpired(f.ctx, f.now.Add(time.Second))
		must(t, err, "DeleteExpired a second later")
		if n != 4 {
			t.Errorf("DeleteExpired a second later = %d, want 4", n)
		}
	}},
}

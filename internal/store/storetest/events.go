package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
)

// newEvent is an event of m at the fixture's now, with a caller; m nil makes an event of the
// project alone.
func (f *fixture) newEvent(m *auth.Member, typ string, data map[string]any) auth.Event {
	e := auth.Event{
		ID:        newID("event"),
		Type:      typ,
		Time:      f.now,
		ProjectID: f.project.ID,
		RequestID: newID("request-id"),
		ClientIP:  "203.0.113.7",
		UserAgent: "Stytch Node v14.2.0",
		Data:      data,
	}
	if m != nil {
		e.ProjectID, e.OrganizationID, e.MemberID = m.ProjectID, m.OrganizationID, m.ID
	}
	return e
}

// eventsWhere reads every event of the project matching q, newest first, paging by q.Limit (10
// when unset) as a client would, and checks that each page but the last is full and says More.
func (f *fixture) eventsWhere(t *testing.T, projectID string, q auth.EventQuery) []auth.Event {
	t.Helper()
	if q.Limit == 0 {
		q.Limit = 10
	}
	out := []auth.Event{}
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatalf("Events: more than 1000 pages of %d", q.Limit)
		}
		page, err := f.store.Events(f.ctx, projectID, q)
		must(t, err, "Events")
		if len(page.Events) > q.Limit {
			t.Fatalf("Events returned %d events, over the limit %d", len(page.Events), q.Limit)
		}
		if page.NextCursor != "" {
			t.Errorf("Events set NextCursor %q: it is the Service's", page.NextCursor)
		}
		out = append(out, page.Events...)
		if !page.More {
			return out
		}
		if len(page.Events) != q.Limit {
			t.Fatalf("Events: a page of %d events says More, want %d (the limit)", len(page.Events), q.Limit)
		}
		last := page.Events[len(page.Events)-1]
		q.After = &auth.EventCursor{Time: last.Time, ID: last.ID}
	}
}

// memberEvents reads every event of a member of the fixture's project, newest first.
func (f *fixture) memberEvents(t *testing.T, memberID string) []auth.Event {
	t.Helper()
	return f.eventsWhere(t, f.project.ID, auth.EventQuery{MemberID: memberID})
}

// projectEvents reads every event of the fixture's project, newest first.
func (f *fixture) projectEvents(t *testing.T) []auth.Event {
	t.Helper()
	return f.eventsWhere(t, f.project.ID, auth.EventQuery{})
}

// newestFirst sorts events in the order Events returns them: time, then id (by bytes), both
// descending.
func newestFirst(events []auth.Event) []auth.Event {
	out := slices.Clone(events)
	slices.SortFunc(out, func(a, b auth.Event) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out
}

// wantEvents checks that the member's events are exactly want, in any order of writing.
func (f *fixture) wantEvents(t *testing.T, memberID string, want []auth.Event, what string) {
	t.Helper()
	wantEqual(t, f.memberEvents(t, memberID), newestFirst(want), what+": events")
}

// wantNoEvents checks that the member has no event.
func (f *fixture) wantNoEvents(t *testing.T, memberID, what string) {
	t.Helper()
	if evs := f.memberEvents(t, memberID); len(evs) != 0 {
		t.Errorf("%s: %d events recorded, want none: %+v", what, len(evs), evs)
	}
}

// eventTypes lists the types of events, in order.
func eventTypes(events []auth.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Type
	}
	return out
}

var eventTests = []test{
	{"DeleteEventsBefore deletes a project's older events, oldest first, up to a limit, and keeps what pending deliveries need", func(t *testing.T, f *fixture) {
		other := f.otherProject(t)
		at := func(p auth.Project, ago time.Duration, typ string) auth.Event {
			e := f.newEvent(nil, typ, nil)
			e.ProjectID, e.Time = p.ID, f.now.Add(-ago)
			return e
		}
		oldest, old := at(f.project, 4*time.Hour, auth.EventRecoveryCodesRead), at(f.project, 3*time.Hour, auth.EventRecoveryCodesRead)
		otherOld := at(other, 3*time.Hour, auth.EventSessionCreated)
		must(t, f.store.RecordEvents(f.ctx, oldest, old, otherOld), "RecordEvents, old")
		// A webhook, then an event it has a pending delivery of, then later ones.
		hook := f.createWebhook(t, f.project)
		pending, later := at(f.project, 2*time.Hour, auth.EventMemberLocked), at(f.project, time.Hour, auth.EventMemberLocked)
		recent := at(f.project, time.Minute, auth.EventRecoveryCodesRead)
		must(t, f.store.RecordEvents(f.ctx, pending, later, recent), "RecordEvents, with deliveries")
		cutoff := f.now.Add(-30 * time.Minute)

		for _, step := range []struct {
			limit int
			want  int64
			kept  []auth.Event
		}{
			{1, 1, []auth.Event{old, pending, later, recent}}, // the oldest first
			{10, 1, []auth.Event{pending, later, recent}},     // a pending delivery holds the rest
			{10, 0, []auth.Event{pending, later, recent}},     // and holds them again
		} {
			n, err := f.store.DeleteEventsBefore(f.ctx, f.project.ID, cutoff, step.limit)
			must(t, err, "DeleteEventsBefore")
			if n != step.want {
				t.Errorf("DeleteEventsBefore(limit %d) deleted %d events, want %d", step.limit, n, step.want)
			}
			wantEqual(t, f.projectEvents(t), newestFirst(step.kept), fmt.Sprintf("events kept after DeleteEventsBefore(limit %d)", step.limit))
		}
		wantEqual(t, f.eventsWhere(t, other.ID, auth.EventQuery{}), []auth.Event{otherOld}, "the other project's events, untouched")
		deliveries, err := f.store.WebhookDeliveries(f.ctx, f.project.ID, hook.ID, 10)
		must(t, err, "WebhookDeliveries")
		if len(deliveries) != 3 {
			t.Errorf("%d deliveries after pruning, want 3 (untouched)", len(deliveries))
		}

		// Once the deliveries are gone, nothing holds the events back.
		must(t, f.store.DeleteWebhook(f.ctx, f.project.ID, hook.ID), "DeleteWebhook")
		n, err := f.store.DeleteEventsBefore(f.ctx, f.project.ID, cutoff, 10)
		must(t, err, "DeleteEventsBefore after the deliveries went")
		if n != 2 {
			t.Errorf("DeleteEventsBefore after the deliveries went deleted %d events, want 2", n)
		}
		wantEqual(t, f.projectEvents(t), []auth.Event{recent}, "events kept at last")
		n, err = f.store.DeleteEventsBefore(f.ctx, "project-test-"+newID("none"), cutoff, 10)
		if err != nil || n != 0 {
			t.Errorf("DeleteEventsBefore of no project = %d, %v; want 0, nil", n, err)
		}
	}},
	{"RecordEvents stores every field exactly; Events returns it in the project only", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		m := f.createMember(t, o)
		full := f.newEvent(&m, auth.EventRecoveryCodesIssued, map[string]any{
			"count":    float64(10),
			"ratio":    0.25,
			"imported": false,
			"source":   "totp_create",
			"at":       "2026-03-01T09:30:00Z",
			"none":     nil,
			"nested":   map[string]any{"list": []any{"a", float64(1), true, nil, map[string]any{}}, "empty": []any{}},
			"unicode":  "ünïcødé ✓ \"quoted\" <tag> &amp; \\ \u2028",
		})
		full.UserAgent = "Mozilla/5.0 (ünïcødé; \"quoted\") ✓ " + strings.Repeat("x", 400)
		full.ClientIP = "2001:db8::1"
		noMember := f.newEvent(nil, auth.EventPasswordFailed, map[string]any{"reason": "unknown_member"})
		noMember.OrganizationID, noMember.Time = o.ID, f.now.Add(-time.Second)
		bare := auth.Event{ID: newID("event"), Type: "storetest.bare", Time: f.now.Add(-2 * time.Second), ProjectID: f.project.ID, Data: map[string]any{}}
		noData := f.newEvent(&m, "storetest.no-data", nil)
		noData.Time = f.now.Add(-3 * time.Second)
		must(t, f.store.RecordEvents(f.ctx, full, noMember, bare, noData), "RecordEvents")
		must(t, f.store.RecordEvents(f.ctx), "RecordEvents of none")

		page, err := f.store.Events(f.ctx, f.project.ID, auth.EventQuery{Limit: 10})
		must(t, err, "Events")
		noData.Data = map[string]any{} // none is stored as the empty object
		wantEqual(t, page.Events, []auth.Event{full, noMember, bare, noData}, "Events")
		for _, e := range page.Events {
			if e.Data == nil {
				t.Errorf("event %s: Data is nil, want an object", e.ID)
			}
		}
		if page.More {
			t.Errorf("Events: More with every event on the page")
		}
		other := f.otherProject(t)
		page, err = f.store.Events(f.ctx, other.ID, auth.EventQuery{Limit: 10})
		must(t, err, "Events of another project")
		if len(page.Events) != 0 || page.More {
			t.Errorf("Events of another project: %d events, More %v; want none", len(page.Events), page.More)
		}
		if page.Events == nil {
			t.Errorf("Events of a project without events: nil, want an empty list")
		}
	}},
	{"RecordEvents writes all of its events or none", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		events := make([]auth.Event, 20) // more than one statement's worth on a backend that chunks
		for i := range events {
			events[i] = f.newEvent(&m, auth.EventSessionRevoked, map[string]any{"n": float64(i)})
		}
		events[len(events)-1].ID = events[0].ID // the same key twice: the last insert fails
		if err := f.store.RecordEvents(f.ctx, events...); err == nil {
			t.Fatalf("RecordEvents with a duplicate key: no error")
		}
		f.wantNoEvents(t, m.ID, "after a failed RecordEvents")
		events[len(events)-1].ID = newID("event")
		must(t, f.store.RecordEvents(f.ctx, events...), "RecordEvents")
		f.wantEvents(t, m.ID, events, "after RecordEvents")
	}},
	{"Events orders newest first by time then id and pages with After", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		var all []auth.Event
		for i := range 31 {
			e := f.newEvent(&m, auth.EventRecoveryCodeFailed, map[string]any{"i": float64(i)})
			e.Time = f.now.Add(-time.Duration(i%5) * time.Second) // many events share a second
			all = append(all, e)
		}
		// Written in several calls, out of order.
		must(t, f.store.RecordEvents(f.ctx, all[20:]...), "RecordEvents")
		must(t, f.store.RecordEvents(f.ctx, all[:20]...), "RecordEvents")
		want := newestFirst(all)
		for _, limit := range []int{1, 7, 10, 31, 1000} {
			got := f.eventsWhere(t, f.project.ID, auth.EventQuery{Limit: limit})
			wantEqual(t, got, want, fmt.Sprintf("every page of %d", limit))
		}
		// A cursor names a position, not a stored event: it also works after its event, or
		// between events.
		page, err := f.store.Events(f.ctx, f.project.ID, auth.EventQuery{Limit: 100, After: &auth.EventCursor{Time: want[4].Time, ID: want[4].ID + "~"}})
		must(t, err, "Events after a position between two events")
		wantEqual(t, page.Events, want[4:], "events after a position just past want[4]")
		page, err = f.store.Events(f.ctx, f.project.ID, auth.EventQuery{Limit: 100, After: &auth.EventCursor{Time: f.now.Add(-2 * time.Second), ID: "event-"}})
		must(t, err, "Events after a second's lowest id")
		for _, e := range page.Events {
			if !e.Time.Before(f.now.Add(-2 * time.Second)) {
				t.Errorf("Events after (now-2s, lowest id): got an event at %v", e.Time)
			}
		}
	}},
	{"Events filters by types, organization, member and time range, within the project", func(t *testing.T, f *fixture) {
		o1, o2 := f.createOrganization(t), f.createOrganization(t)
		m1, m2, m3 := f.createMember(t, o1), f.createMember(t, o1), f.createMember(t, o2)
		types := []string{auth.EventRecoveryCodeUsed, auth.EventSessionCreated, auth.EventTOTPFailed}
		var all []auth.Event
		for i := range 36 {
			var e auth.Event
			switch i % 4 {
			case 0:
				e = f.newEvent(&m1, types[i%3], nil)
			case 1:
				e = f.newEvent(&m2, types[i%3], nil)
			case 2:
				e = f.newEvent(&m3, types[i%3], nil)
			default:
				e = f.newEvent(nil, types[i%3], nil) // the project's, no organization
			}
			e.Data = map[string]any{"i": float64(i)}
			e.Time = f.now.Add(-time.Duration(i%6) * time.Second)
			all = append(all, e)
		}
		must(t, f.store.RecordEvents(f.ctx, all...), "RecordEvents")
		// Another project's events with the same ids must never show.
		other := f.otherProject(t)
		var foreign []auth.Event
		for _, e := range all[:8] {
			e.ID, e.ProjectID = newID("event"), other.ID
			foreign = append(foreign, e)
		}
		must(t, f.store.RecordEvents(f.ctx, foreign...), "RecordEvents in another project")

		matches := func(q auth.EventQuery, e auth.Event) bool {
			return (len(q.Types) == 0 || slices.Contains(q.Types, e.Type)) &&
				(q.OrganizationID == "" || e.OrganizationID == q.OrganizationID) &&
				(q.MemberID == "" || e.MemberID == q.MemberID) &&
				(q.Since.IsZero() || !e.Time.Before(q.Since)) &&
				(q.Until.IsZero() || e.Time.Before(q.Until))
		}
		for _, tc := range []struct {
			name string
			q    auth.EventQuery
		}{
			{"no filter", auth.EventQuery{}},
			{"one type", auth.EventQuery{Types: types[:1]}},
			{"two types", auth.EventQuery{Types: types[1:]}},
			{"an unknown type", auth.EventQuery{Types: []string{"no.such"}}},
			{"organization", auth.EventQuery{OrganizationID: o1.ID}},
			{"member", auth.EventQuery{MemberID: m2.ID}},
			{"member and its organization", auth.EventQuery{OrganizationID: o1.ID, MemberID: m1.ID}},
			{"member and another organization", auth.EventQuery{OrganizationID: o2.ID, MemberID: m1.ID}},
			{"since (inclusive)", auth.EventQuery{Since: f.now.Add(-2 * time.Second)}},
			{"until (exclusive)", auth.EventQuery{Until: f.now.Add(-2 * time.Second)}},
			{"since = until", auth.EventQuery{Since: f.now.Add(-2 * time.Second), Until: f.now.Add(-2 * time.Second)}},
			{"a one-second window", auth.EventQuery{Since: f.now.Add(-3 * time.Second), Until: f.now.Add(-2 * time.Second)}},
			{"everything at once", auth.EventQuery{Types: types[:2], OrganizationID: o1.ID, MemberID: m2.ID, Since: f.now.Add(-4 * time.Second), Until: f.now}},
			{"a time range of the organization", auth.EventQuery{OrganizationID: o2.ID, Since: f.now.Add(-5 * time.Second), Until: f.now.Add(-1 * time.Second)}},
		} {
			var want []auth.Event
			for _, e := range all {
				if matches(tc.q, e) {
					want = append(want, e)
				}
			}
			tc.q.Limit = 4
			wantEqual(t, f.eventsWhere(t, f.project.ID, tc.q), newestFirst(want), "Events: "+tc.name)
		}
		for _, ref := range oddRefs() {
			page, err := f.store.Events(f.ctx, f.project.ID, auth.EventQuery{MemberID: ref, OrganizationID: ref, Types: []string{ref}, Limit: 5, After: &auth.EventCursor{Time: f.now, ID: ref}})
			if err != nil || len(page.Events) != 0 {
				t.Errorf("Events with the odd ref %q: %d events, %v; want none and no error", truncate(ref), len(page.Events), err)
			}
		}
	}},
	{"events outlive the member and the organization they name", func(t *testing.T, f *fixture) {
		s := f.setupMFA(t, 3)
		sess := f.createSession(t, s.m)
		var want []auth.Event
		_, err := f.store.UpdateMember(f.ctx, f.project.ID, s.m.ID, func(x *auth.Member) ([]auth.Event, error) {
			e := f.newEvent(x, auth.EventTOTPFailed, map[string]any{"failed_attempts": float64(1)})
			want = []auth.Event{e}
			x.FailedAttempts = 1
			return want, nil
		})
		must(t, err, "UpdateMember")
		done, err := f.store.Complete(f.ctx, f.recover(s, s.codes[0], s.ist.TokenDigest))
		must(t, err, "Complete")
		spent := f.eventsWhere(t, f.project.ID, auth.EventQuery{Types: []string{auth.EventRecoveryCodeUsed}})
		if len(spent) != 1 {
			t.Fatalf("%d events after Complete, want 1", len(spent))
		}
		want = append(want, spent[0])
		revoked := f.newEvent(&s.m, auth.EventSessionRevoked, map[string]any{"member_session_id": sess.ID})
		must(t, f.store.DeleteSession(f.ctx, f.project.ID, sess.ID, f.now, revoked), "DeleteSession")
		want = append(want, revoked)
		f.wantEvents(t, s.m.ID, want, "before the deletions")
		if done.Session.ID != want[1].Data["member_session_id"] {
			t.Errorf("Complete's event names session %v, want %s", want[1].Data["member_session_id"], done.Session.ID)
		}
		must(t, f.store.DeleteMember(f.ctx, f.project.ID, s.m.ID), "DeleteMember")
		f.wantEvents(t, s.m.ID, want, "after DeleteMember")
		must(t, f.store.DeleteOrganization(f.ctx, f.project.ID, s.m.OrganizationID), "DeleteOrganization")
		wantEqual(t, f.eventsWhere(t, f.project.ID, auth.EventQuery{OrganizationID: s.m.OrganizationID}), newestFirst(want), "events after DeleteOrganization")
		_, err = f.store.DeleteExpired(f.ctx, f.now.Add(1000*24*time.Hour))
		must(t, err, "DeleteExpired")
		f.wantEvents(t, s.m.ID, want, "after DeleteExpired")
	}},
	{"CreateTOTP records its events with the registration, none when it refuses", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		other := f.otherProject(t)
		ghost := f.newMember(f.createOrganization(t))
		reg := f.newTOTP(m)
		evs := []auth.Event{
			f.newEvent(&m, auth.EventTOTPEnrolled, map[string]any{"totp_registration_id": reg.ID}),
			f.newEvent(&m, auth.EventRecoveryCodesIssued, map[string]any{"totp_registration_id": reg.ID, "count": float64(10)}),
		}
		wantErr(t, f.store.CreateTOTP(f.ctx, other.ID, reg, newCodes(10), evs...), auth.ErrMemberNotFound, "CreateTOTP through another project")
		wantErr(t, f.store.CreateTOTP(f.ctx, f.project.ID, f.newTOTP(ghost), newCodes(10), f.newEvent(&ghost, auth.EventTOTPEnrolled, nil)), auth.ErrMemberNotFound, "CreateTOTP of an unknown member")
		f.wantNoEvents(t, m.ID, "after refused CreateTOTPs")
		f.wantNoEvents(t, ghost.ID, "after refused CreateTOTPs")
		must(t, f.store.CreateTOTP(f.ctx, f.project.ID, reg, newCodes(10), evs...), "CreateTOTP")
		f.wantEvents(t, m.ID, evs, "after CreateTOTP")
		second := f.newTOTP(m)
		wantErr(t, f.store.CreateTOTP(f.ctx, f.project.ID, second, newCodes(10), f.newEvent(&m, auth.EventTOTPEnrolled, nil)), auth.ErrActiveTOTPExists, "a second CreateTOTP")
		f.wantEvents(t, m.ID, evs, "after a refused second CreateTOTP")
		// Without events, as bulk paths may call it.
		n := f.createMember(t, f.createOrganization(t))
		must(t, f.store.CreateTOTP(f.ctx, f.project.ID, f.newTOTP(n), newCodes(3)), "CreateTOTP without events")
		f.wantNoEvents(t, n.ID, "after CreateTOTP without events")
	}},
	{"ReplaceRecoveryCodes records its events with the new set, none when it refuses", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		reg, _ := f.createTOTP(t, m, 10)
		other := f.otherProject(t)
		rotated := f.newEvent(&m, auth.EventRecoveryCodesRotated, map[string]any{"totp_registration_id": reg.ID, "count": float64(10)})
		wantErr(t, f.store.ReplaceRecoveryCodes(f.ctx, other.ID, reg.ID, nil, newCodes(10), rotated), auth.ErrTOTPNotFound, "ReplaceRecoveryCodes through another project")
		wantErr(t, f.store.ReplaceRecoveryCodes(f.ctx, f.project.ID, newID("member-totp"), nil, newCodes(10), rotated), auth.ErrTOTPNotFound, "ReplaceRecoveryCodes of an unknown registration")
		f.wantNoEvents(t, m.ID, "after refused rotations")
		fresh := newCodes(10)
		must(t, f.store.ReplaceRecoveryCodes(f.ctx, f.project.ID, reg.ID, nil, fresh, rotated), "ReplaceRecoveryCodes")
		f.wantEvents(t, m.ID, []auth.Event{rotated}, "after ReplaceRecoveryCodes")
		wantEqual(t, f.codesOf(t, reg), fresh, "codes")
		got, err := f.store.TOTP(f.ctx, f.project.ID, m.ID)
		must(t, err, "TOTP")
		if got.SealedCodes != nil {
			t.Errorf("ReplaceRecoveryCodes with a nil sealed set stored %x, want nil (the strict storage policy)", got.SealedCodes)
		}
	}},
	{"intermediate session writes record their events, none when they refuse", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		ist := f.newIST(m)
		created := f.newEvent(&m, auth.EventPasswordAuthenticated, map[string]any{"mfa_required": true})
		must(t, f.store.CreateIntermediateSession(f.ctx, ist, created), "CreateIntermediateSession")
		f.wantEvents(t, m.ID, []auth.Event{created}, "after CreateIntermediateSession")
		if err := f.store.CreateIntermediateSession(f.ctx, ist, f.newEvent(&m, auth.EventPasswordAuthenticated, nil)); err == nil {
			t.Errorf("CreateIntermediateSession of a token digest in use: no error")
		}
		f.wantEvents(t, m.ID, []auth.Event{created}, "after a failed CreateIntermediateSession")

		again := f.newEvent(&m, auth.EventPasswordAuthenticated, map[string]any{"mfa_required": true, "again": true})
		add := func(x *auth.IntermediateSession) error {
			x.Factors = append(x.Factors, totpFactor(f.now, "member-totp-test-x"))
			return nil
		}
		_, err := f.store.UpdateIntermediateSession(f.ctx, f.project.ID, digest(), f.now, add, again)
		wantErr(t, err, auth.ErrISTNotFound, "UpdateIntermediateSession of an unknown one")
		_, err = f.store.UpdateIntermediateSession(f.ctx, f.project.ID, ist.TokenDigest, ist.ExpiresAt, add, again)
		wantErr(t, err, auth.ErrISTNotFound, "UpdateIntermediateSession at its expiry")
		_, err = f.store.UpdateIntermediateSession(f.ctx, f.project.ID, ist.TokenDigest, f.now, func(*auth.IntermediateSession) error { return errApply }, again)
		wantErr(t, err, errApply, "UpdateIntermediateSession whose apply refuses")
		f.wantEvents(t, m.ID, []auth.Event{created}, "after refused updates")
		_, err = f.store.UpdateIntermediateSession(f.ctx, f.project.ID, ist.TokenDigest, f.now, add, again)
		must(t, err, "UpdateIntermediateSession")
		f.wantEvents(t, m.ID, []auth.Event{created, again}, "after UpdateIntermediateSession")
	}},
	{"DeleteSession records its events only when it revokes", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		s := f.createSession(t, m)
		expired := f.createSession(t, m, func(x *auth.Session) { x.ExpiresAt = f.now })
		other := f.otherProject(t)
		revoked := f.newEvent(&m, auth.EventSessionRevoked, map[string]any{"member_session_id": s.ID, "by": "member_session_id"})
		for _, tc := range []struct {
			name      string
			projectID string
			id        string
		}{
			{"through another project", other.ID, s.ID},
			{"unknown", f.project.ID, newID("member-session")},
			{"expired", f.project.ID, expired.ID},
			{"an odd id", f.project.ID, "member-session-\x00"},
		} {
			wantErr(t, f.store.DeleteSession(f.ctx, tc.projectID, tc.id, f.now, revoked), auth.ErrSessionNotFound, "DeleteSession: "+tc.name)
		}
		f.wantNoEvents(t, m.ID, "after refused revocations")
		must(t, f.store.DeleteSession(f.ctx, f.project.ID, s.ID, f.now, revoked), "DeleteSession")
		f.wantEvents(t, m.ID, []auth.Event{revoked}, "after DeleteSession")
		wantErr(t, f.store.DeleteSession(f.ctx, f.project.ID, s.ID, f.now, f.newEvent(&m, auth.EventSessionRevoked, nil)), auth.ErrSessionNotFound, "DeleteSession again")
		f.wantEvents(t, m.ID, []auth.Event{revoked}, "after DeleteSession again")
	}},
	{"DeleteMemberSessions records events for the sessions that were live, oldest first", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		m, n := f.createMember(t, o), f.createMember(t, o)
		newer := f.createSession(t, m)
		older := f.createSession(t, m, func(s *auth.Session) { s.StartedAt = f.now.Add(-time.Hour) })
		f.createSession(t, m, func(s *auth.Session) { s.StartedAt, s.ExpiresAt = f.now.Add(-2*time.Hour), f.now }) // expired at now
		kept := f.createSession(t, n)
		revokeEach := func(calls *[][]string) func([]string) []auth.Event {
			return func(ids []string) []auth.Event {
				*calls = append(*calls, slices.Clone(ids))
				var out []auth.Event
				for _, id := range ids {
					out = append(out, f.newEvent(&m, auth.EventSessionRevoked, map[string]any{"member_session_id": id, "by": "member_id"}))
				}
				return out
			}
		}
		var calls [][]string
		must(t, f.store.DeleteMemberSessions(f.ctx, f.otherProject(t).ID, m.ID, f.now, revokeEach(&calls)), "DeleteMemberSessions through another project")
		if len(f.sessionIDs(t, m)) != 2 {
			t.Errorf("DeleteMemberSessions through another project revoked sessions")
		}
		for _, ids := range calls {
			if len(ids) != 0 {
				t.Errorf("DeleteMemberSessions through another project reported revoked %v", ids)
			}
		}
		f.wantNoEvents(t, m.ID, "after DeleteMemberSessions through another project")

		calls = nil
		must(t, f.store.DeleteMemberSessions(f.ctx, f.project.ID, m.ID, f.now, revokeEach(&calls)), "DeleteMemberSessions")
		if len(calls) == 0 {
			t.Fatalf("DeleteMemberSessions never called events")
		}
		wantEqual(t, calls[len(calls)-1], []string{older.ID, newer.ID}, "the revoked ids events was given (live ones, oldest first)")
		evs := f.memberEvents(t, m.ID)
		if len(evs) != 2 {
			t.Fatalf("%d events after DeleteMemberSessions, want 2: %+v", len(evs), evs)
		}
		var named []string
		for _, e := range evs {
			named = append(named, e.Data["member_session_id"].(string))
		}
		slices.Sort(named)
		wantIDs := []string{older.ID, newer.ID}
		slices.Sort(wantIDs)
		wantEqual(t, named, wantIDs, "sessions named by the events")
		wantEqual(t, f.sessionIDs(t, n), []string{kept.ID}, "the other member's sessions")

		calls = nil
		must(t, f.store.DeleteMemberSessions(f.ctx, f.project.ID, m.ID, f.now, revokeEach(&calls)), "DeleteMemberSessions with none left")
		for _, ids := range calls {
			if len(ids) != 0 {
				t.Errorf("DeleteMemberSessions with none left reported revoked %v", ids)
			}
		}
		if got := len(f.memberEvents(t, m.ID)); got != 2 {
			t.Errorf("%d events after revoking nothing, want still 2", got)
		}
		must(t, f.store.DeleteMemberSessions(f.ctx, f.project.ID, n.ID, f.now, nil), "DeleteMemberSessions without events")
		f.wantNoEvents(t, n.ID, "after DeleteMemberSessions without events")
	}},
	{"UpdateMember records apply's events with the write, none when it refuses", func(t *testing.T, f *fixture) {
		o := f.createOrganization(t)
		m := f.createMember(t, o)
		taken := f.createMember(t, o)
		other := f.otherProject(t)
		event := func(x *auth.Member) auth.Event {
			return f.newEvent(x, auth.EventMemberLocked, map[string]any{"failed_attempts": float64(x.FailedAttempts)})
		}
		for _, tc := range []struct {
			name      string
			projectID string
			id        string
			apply     func(*auth.Member) ([]auth.Event, error)
			want      error
		}{
			{"unknown member", f.project.ID, newID("member"), func(x *auth.Member) ([]auth.Event, error) { return []auth.Event{event(x)}, nil }, auth.ErrMemberNotFound},
			{"through another project", other.ID, m.ID, func(x *auth.Member) ([]auth.Event, error) { return []auth.Event{event(x)}, nil }, auth.ErrMemberNotFound},
			{"apply refuses", f.project.ID, m.ID, func(x *auth.Member) ([]auth.Event, error) {
				x.FailedAttempts = 3
				return []auth.Event{event(x)}, errApply
			}, errApply},
			{"the write breaks a unique key after apply", f.project.ID, m.ID, func(x *auth.Member) ([]auth.Event, error) {
				x.EmailAddress = taken.EmailAddress
				return []auth.Event{event(x)}, nil
			}, auth.ErrDuplicateMemberEmail},
		} {
			_, err := f.store.UpdateMember(f.ctx, tc.projectID, tc.id, tc.apply)
			wantErr(t, err, tc.want, "UpdateMember: "+tc.name)
		}
		if evs := f.projectEvents(t); len(evs) != 0 {
			t.Errorf("%d events after refused updates, want none: %+v", len(evs), evs)
		}
		wantEqual(t, f.reread(t, m), m, "member after refused updates")

		var want []auth.Event
		got, err := f.store.UpdateMember(f.ctx, f.project.ID, m.ID, func(x *auth.Member) ([]auth.Event, error) {
			x.FailedAttempts = 10
			want = []auth.Event{event(x), f.newEvent(x, auth.EventTOTPFailed, nil)}
			return want, nil
		})
		must(t, err, "UpdateMember")
		if got.FailedAttempts != 10 {
			t.Errorf("UpdateMember: FailedAttempts %d, want 10", got.FailedAttempts)
		}
		want[1].Data = map[string]any{}
		f.wantEvents(t, m.ID, want, "after UpdateMember")
		_, err = f.store.UpdateMember(f.ctx, f.project.ID, m.ID, func(*auth.Member) ([]auth.Event, error) { return nil, nil })
		must(t, err, "UpdateMember without events")
		f.wantEvents(t, m.ID, want, "after UpdateMember without events")
	}},
	{"DeleteTOTP records apply's events with the deletion, none when it refuses", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		bare := f.createMember(t, f.createOrganization(t))
		reg, _ := f.createTOTP(t, m, 4)
		other := f.otherProject(t)
		deleted := func(x *auth.Member) ([]auth.Event, error) {
			return []auth.Event{f.newEvent(x, auth.EventTOTPDeleted, map[string]any{"totp_registration_id": x.TOTPRegistrationID})}, nil
		}
		_, err := f.store.DeleteTOTP(f.ctx, f.project.ID, bare.ID, deleted)
		wantErr(t, err, auth.ErrTOTPNotFound, "DeleteTOTP of a member without a registration")
		_, err = f.store.DeleteTOTP(f.ctx, other.ID, m.ID, deleted)
		wantErr(t, err, auth.ErrMemberNotFound, "DeleteTOTP through another project")
		_, err = f.store.DeleteTOTP(f.ctx, f.project.ID, m.ID, func(x *auth.Member) ([]auth.Event, error) {
			evs, _ := deleted(x)
			return evs, errApply
		})
		wantErr(t, err, errApply, "DeleteTOTP whose apply refuses")
		if evs := f.projectEvents(t); len(evs) != 0 {
			t.Errorf("%d events after refused deletions, want none: %+v", len(evs), evs)
		}
		if _, err := f.store.TOTP(f.ctx, f.project.ID, m.ID); err != nil {
			t.Errorf("a refused DeleteTOTP deleted the registration: %v", err)
		}
		_, err = f.store.DeleteTOTP(f.ctx, f.project.ID, m.ID, deleted)
		must(t, err, "DeleteTOTP")
		evs := f.memberEvents(t, m.ID)
		if len(evs) != 1 || evs[0].Data["totp_registration_id"] != reg.ID {
			t.Errorf("events after DeleteTOTP: %+v, want one naming %s (apply sees the member with its registration id)", evs, reg.ID)
		}
	}},
	{"Complete records Events given the member before ApplyMember and the outcome", func(t *testing.T, f *fixture) {
		s := f.setupMFA(t, 4, func(m *auth.Member) { m.FailedAttempts = 3 })
		var (
			calls  int
			before auth.Member
			done   auth.Completed
		)
		c := f.recover(s, s.codes[1], s.ist.TokenDigest)
		c.Events = func(b auth.Member, d auth.Completed) []auth.Event {
			calls++
			before, done = b, d
			return []auth.Event{f.spentEvent(s.codes[1], b, d), f.newEvent(&d.Member, auth.EventSessionCreated, map[string]any{"member_session_id": d.Session.ID})}
		}
		out, err := f.store.Complete(f.ctx, c)
		must(t, err, "Complete")
		if calls < 1 {
			t.Fatalf("Complete never called Events")
		}
		wantEqual(t, before, s.m, "the member Events saw as before")
		wantEqual(t, done, out, "the Completed Events saw")
		if done.RemainingCodes != 3 || done.Member.FailedAttempts != 0 {
			t.Errorf("Events saw RemainingCodes %d and FailedAttempts %d, want 3 and 0 (after ApplyMember)", done.RemainingCodes, done.Member.FailedAttempts)
		}
		evs := f.memberEvents(t, s.m.ID)
		types := eventTypes(evs)
		slices.Sort(types)
		wantEqual(t, types, []string{auth.EventRecoveryCodeUsed, auth.EventSessionCreated}, "event types")
		for _, e := range evs {
			if e.Data["member_session_id"] != out.Session.ID {
				t.Errorf("event %s names session %v, want %s", e.Type, e.Data["member_session_id"], out.Session.ID)
			}
			if e.Type == auth.EventRecoveryCodeUsed && (e.Data["attempts_before"] != float64(3) || e.Data["remaining"] != float64(3)) {
				t.Errorf("recorded data %v, want attempts_before 3 and remaining 3", e.Data)
			}
		}
	}},
	{"Complete refused at any step records no event", func(t *testing.T, f *fixture) {
		lockEnd := f.now.Add(10 * time.Minute)
		for _, tc := range []struct {
			name   string
			mods   []func(*auth.Member)
			change func(s mfaSetup, c *auth.Completion)
			want   error
		}{
			{"the member is locked", []func(*auth.Member){func(m *auth.Member) { m.FailedAttempts, m.LockCreatedAt, m.LockExpiresAt = 10, f.now, lockEnd }},
				func(mfaSetup, *auth.Completion) {}, auth.ErrMemberLocked},
			{"the code is another's", nil, func(s mfaSetup, c *auth.Completion) { c.SpendRecoveryCode = newCodeID() }, auth.ErrRecoveryCodeRejected},
			{"the TOTP step is a replay", nil, func(s mfaSetup, c *auth.Completion) {
				c.SpendTOTPStep = &auth.TOTPStep{RegistrationID: s.reg.ID, Step: 1000}
			}, auth.ErrTOTPCodeAlreadyUsed},
			{"the IST is unknown", nil, func(s mfaSetup, c *auth.Completion) { c.ConsumeIST = digest() }, auth.ErrISTNotFound},
			{"the session is unknown", nil, func(s mfaSetup, c *auth.Completion) { c.ConsumeIST, c.SessionID = nil, newID("member-session") }, auth.ErrSessionNotFound},
			{"ApplySession refuses (claims too large)", nil, func(s mfaSetup, c *auth.Completion) {
				c.ApplySession = func(*auth.Session) error { return auth.ErrCustomClaimsTooLarge }
			}, auth.ErrCustomClaimsTooLarge},
			{"ApplyMember refuses", nil, func(s mfaSetup, c *auth.Completion) {
				c.ApplyMember = func(*auth.Member) error { return errApply }
			}, errApply},
		} {
			s := f.setupMFA(t, 3, tc.mods...)
			c := f.recover(s, s.codes[0], s.ist.TokenDigest)
			tc.change(s, &c)
			_, err := f.store.Complete(f.ctx, c)
			wantErr(t, err, tc.want, "Complete: "+tc.name)
			f.wantUntouched(t, s, tc.name)
		}

		// A write that fails after Events ran (the new session's id is taken): the events,
		// written in the same transaction, go with it.
		s := f.setupMFA(t, 3)
		taken := f.createSession(t, s.m)
		c := f.recover(s, s.codes[0], s.ist.TokenDigest)
		c.NewSession.ID = taken.ID
		if _, err := f.store.Complete(f.ctx, c); err == nil {
			t.Errorf("Complete with a session id in use: no error")
		}
		f.wantNoEvents(t, s.m.ID, "after a Complete whose session insert failed")
		wantEqual(t, f.codesOf(t, s.reg), s.codes, "codes after a Complete whose session insert failed")
	}},
	{"concurrent spends of one code: only the winner's events are recorded", func(t *testing.T, f *fixture) {
		s := f.setupMFA(t, 10)
		results := make([]auth.Completed, racers)
		errs := race(racers, func(i int) (err error) {
			results[i], err = f.store.Complete(f.ctx, f.recover(s, s.codes[0], nil))
			return err
		})
		win := wantOneWinner(t, errs, auth.ErrRecoveryCodeRejected, "Complete")
		evs := f.memberEvents(t, s.m.ID)
		if len(evs) != 1 || evs[0].Data["member_session_id"] != results[win].Session.ID {
			t.Errorf("events after the race: %+v, want exactly the winner's (session %s)", evs, results[win].Session.ID)
		}
	}},
	{"concurrent failed attempts: one event per counted failure, each with its own count", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		const n = 24
		p := auth.LockPolicy{Threshold: 20, Duration: time.Hour}
		errs := race(n, func(int) error {
			_, err := f.store.UpdateMember(f.ctx, f.project.ID, m.ID, func(x *auth.Member) ([]auth.Event, error) {
				if x.Locked(f.now) {
					return nil, nil // not counted, not recorded
				}
				lockedNow := x.RecordFailure(f.now, p)
				evs := []auth.Event{f.newEvent(x, auth.EventTOTPFailed, map[string]any{"failed_attempts": float64(x.FailedAttempts)})}
				if lockedNow {
					evs = append(evs, f.newEvent(x, auth.EventMemberLocked, map[string]any{"failed_attempts": float64(x.FailedAttempts)}))
				}
				return evs, nil
			})
			return err
		})
		for _, err := range errs {
			must(t, err, "failed attempt")
		}
		var counts []int
		locks := 0
		for _, e := range f.memberEvents(t, m.ID) {
			switch e.Type {
			case auth.EventTOTPFailed:
				counts = append(counts, int(e.Data["failed_attempts"].(float64)))
			case auth.EventMemberLocked:
				locks++
			}
		}
		slices.Sort(counts)
		want := make([]int, p.Threshold)
		for i := range want {
			want[i] = i + 1
		}
		wantEqual(t, counts, want, "the counts the failure events carry")
		if locks != 1 {
			t.Errorf("%d member.locked events, want 1", locks)
		}
	}},
	{"events of many concurrent writers are all kept", func(t *testing.T, f *fixture) {
		m := f.createMember(t, f.createOrganization(t))
		const n = 20
		ids := make([]string, n)
		errs := race(n, func(i int) error {
			e := f.newEvent(&m, auth.EventRecoveryCodesRead, map[string]any{"i": float64(i)})
			ids[i] = e.ID
			return f.store.RecordEvents(f.ctx, e)
		})
		for _, err := range errs {
			must(t, err, "RecordEvents")
		}
		var got []string
		for _, e := range f.memberEvents(t, m.ID) {
			got = append(got, e.ID)
		}
		slices.Sort(got)
		slices.Sort(ids)
		wantEqual(t, got, ids, "event ids")
	}},
}

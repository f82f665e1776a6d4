package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sparekey/sparekey/internal/auth"
)

// newWebhook is a webhook of project p receiving types (none: every type).
func (f *fixture) newWebhook(p auth.Project, types ...string) auth.Webhook {
	if types == nil {
		types = []string{}
	}
	return auth.Webhook{
		ID:           newID("webhook"),
		ProjectID:    p.ID,
		URL:          "https://hooks.example.com/sparekey/" + short() + "?token=t",
		EventTypes:   types,
		SealedSecret: randomBytes(52),
		CreatedAt:    f.now.Add(-time.Hour),
	}
}

func (f *fixture) createWebhook(t *testing.T, p auth.Project, types ...string) auth.Webhook {
	t.Helper()
	w := f.newWebhook(p, types...)
	must(t, f.store.CreateWebhook(f.ctx, w, auth.MaxWebhooks), "CreateWebhook")
	return w
}

// claimAll claims every delivery due at now under a fresh claim, with a lease of a minute.
func (f *fixture) claimAll(t *testing.T, now time.Time) []auth.WebhookDelivery {
	t.Helper()
	ds, err := f.store.ClaimWebhookDeliveries(f.ctx, uuid.NewString(), now, now.Add(time.Minute), 1000)
	must(t, err, "ClaimWebhookDeliveries")
	return ds
}

// deliveryKeys lists "webhook id / event id" of deliveries, sorted.
func deliveryKeys(ds []auth.WebhookDelivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Webhook.ID + " / " + d.Event.ID
	}
	slices.Sort(out)
	return out
}

func keysOf(pairs ...string) []string {
	out := []string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, pairs[i]+" / "+pairs[i+1])
	}
	slices.Sort(out)
	return out
}

// finish records an outcome for d and fails the test on an error.
func (f *fixture) finish(t *testing.T, d auth.WebhookDelivery, a auth.WebhookAttempt) {
	t.Helper()
	a.WebhookID, a.EventID, a.Claim = d.Webhook.ID, d.Event.ID, d.Claim
	must(t, f.store.FinishWebhookDelivery(f.ctx, a), "FinishWebhookDelivery "+a.Outcome)
}

// deliveryOf returns the store's record of the webhook's delivery of event.
func (f *fixture) deliveryOf(t *testing.T, w auth.Webhook, eventID string) auth.WebhookDeliveryStatus {
	t.Helper()
	all, err := f.store.WebhookDeliveries(f.ctx, w.ProjectID, w.ID, 1000)
	must(t, err, "WebhookDeliveries")
	for _, s := range all {
		if s.EventID == eventID {
			return s
		}
	}
	t.Fatalf("webhook %s has no delivery of event %s", w.ID, eventID)
	return auth.WebhookDeliveryStatus{}
}

func (f *fixture) queueDepth(t *testing.T) int64 {
	t.Helper()
	n, err := f.store.WebhookQueueDepth(f.ctx)
	must(t, err, "WebhookQueueDepth")
	return n
}

var webhookTests = []test{
	{"CreateWebhook, Webhooks and DeleteWebhook keep each project's webhooks apart", func(t *testing.T, f *fixture) {
		other := f.otherProject(t)
		all := f.createWebhook(t, f.project)
		some := f.newWebhook(f.project, auth.EventRecoveryCodeUsed, auth.EventMemberLocked)
		some.CreatedAt = f.now
		must(t, f.store.CreateWebhook(f.ctx, some, auth.MaxWebhooks), "CreateWebhook with types")
		foreign := f.createWebhook(t, other)

		got, err := f.store.Webhooks(f.ctx, f.project.ID)
		must(t, err, "Webhooks")
		wantEqual(t, got, []auth.Webhook{all, some}, "Webhooks, oldest first")
		if got[0].EventTypes == nil {
			t.Errorf("a webhook of every type reads back with nil EventTypes, want an empty list")
		}
		got, err = f.store.Webhooks(f.ctx, other.ID)
		must(t, err, "Webhooks of the other project")
		wantEqual(t, got, []auth.Webhook{foreign}, "Webhooks of the other project")

		wantErr(t, f.store.DeleteWebhook(f.ctx, other.ID, all.ID), auth.ErrWebhookNotFound, "DeleteWebhook from another project")
		for _, ref := range oddRefs() {
			wantErr(t, f.store.DeleteWebhook(f.ctx, f.project.ID, ref), auth.ErrWebhookNotFound, fmt.Sprintf("DeleteWebhook(%.20q)", ref))
		}
		must(t, f.store.DeleteWebhook(f.ctx, f.project.ID, all.ID), "DeleteWebhook")
		wantErr(t, f.store.DeleteWebhook(f.ctx, f.project.ID, all.ID), auth.ErrWebhookNotFound, "DeleteWebhook again")
		got, err = f.store.Webhooks(f.ctx, f.project.ID)
		must(t, err, "Webhooks after a delete")
		wantEqual(t, got, []auth.Webhook{some}, "Webhooks after a delete")
		_, err = f.store.WebhookDeliveries(f.ctx, f.project.ID, all.ID, 10)
		wantErr(t, err, auth.ErrWebhookNotFound, "WebhookDeliveries of a deleted webhook")
		_, err = f.store.WebhookDeliveries(f.ctx, other.ID, some.ID, 10)
		wantErr(t, err, auth.ErrWebhookNotFound, "WebhookDeliveries from another project")
	}},
	{"CreateWebhook stops at max, also when many create at once", func(t *testing.T, f *fixture) {
		const max = 5
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			created  int
			refusals []error
		)
		for range 24 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := f.store.CreateWebhook(f.ctx, f.newWebhook(f.project), max)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					created++
				} else {
					refusals = append(refusals, err)
				}
			}()
		}
		wg.Wait()
		if created != max {
			t.Errorf("%d of 24 concurrent creations with max %d succeeded, want %d", created, max, max)
		}
		for _, err := range refusals {
			wantErr(t, err, auth.ErrTooManyWebhooks, "a creation past max")
		}
		// Another project has its own count.
		must(t, f.store.CreateWebhook(f.ctx, f.newWebhook(f.otherProject(t)), max), "CreateWebhook in another project")
	}},
	{"CreateWebhook and DeleteWebhook record their events exactly when they act", func(t *testing.T, f *fixture) {
		const max = 2
		first := f.newWebhook(f.project)
		created := f.newEvent(nil, auth.EventWebhookCreated, map[string]any{"webhook_id": first.ID})
		must(t, f.store.CreateWebhook(f.ctx, first, max, created), "CreateWebhook with an event")
		wantEqual(t, f.projectEvents(t), []auth.Event{created}, "events after CreateWebhook")

		second := f.newWebhook(f.project)
		announced := f.newEvent(nil, auth.EventWebhookCreated, map[string]any{"webhook_id": second.ID})
		must(t, f.store.CreateWebhook(f.ctx, second, max, announced), "CreateWebhook up to max")
		// The earlier webhook is sent the news; the new one is not sent its own.
		got, err := f.store.WebhookDeliveries(f.ctx, f.project.ID, first.ID, 10)
		must(t, err, "WebhookDeliveries of the earlier webhook")
		if len(got) != 1 || got[0].EventID != announced.ID {
			t.Errorf("the earlier webhook's deliveries: %+v, want one of event %s", got, announced.ID)
		}
		got, err = f.store.WebhookDeliveries(f.ctx, f.project.ID, second.ID, 10)
		must(t, err, "WebhookDeliveries of the new webhook")
		if len(got) != 0 {
			t.Errorf("the new webhook's deliveries: %+v, want none (not its own creation)", got)
		}
		refused := f.newEvent(nil, auth.EventWebhookCreated, nil)
		wantErr(t, f.store.CreateWebhook(f.ctx, f.newWebhook(f.project), max, refused), auth.ErrTooManyWebhooks, "CreateWebhook past max")
		missing := f.newEvent(nil, auth.EventWebhookDeleted, nil)
		wantErr(t, f.store.DeleteWebhook(f.ctx, f.project.ID, newID("webhook"), missing), auth.ErrWebhookNotFound, "DeleteWebhook of no webhook")
		wantEqual(t, f.projectEvents(t), newestFirst([]auth.Event{created, announced}), "events after refusals")

		deleted := f.newEvent(nil, auth.EventWebhookDeleted, map[string]any{"webhook_id": first.ID})
		must(t, f.store.DeleteWebhook(f.ctx, f.project.ID, first.ID, deleted), "DeleteWebhook with an event")
		wantEqual(t, f.projectEvents(t), newestFirst([]auth.Event{created, announced, deleted}), "events after DeleteWebhook")
	}},
	{"an event writes one delivery per matching webhook of its project, with the event and webhook", func(t *testing.T, f *fixture) {
		other := f.otherProject(t)
		every := f.createWebhook(t, f.project)
		used := f.createWebhook(t, f.project, auth.EventRecoveryCodeUsed)
		locked := f.createWebhook(t, f.project, auth.EventMemberLocked, auth.EventSessionCreated)
		foreign := f.createWebhook(t, other)
		m := f.createMember(t, f.createOrganization(t))
		e1 := f.newEvent(&m, auth.EventRecoveryCodeUsed, map[string]any{"remaining": float64(9), "nested": map[string]any{"k": "v"}})
		e2 := f.newEvent(&m, auth.EventSessionCreated, map[string]any{"factor": "password"})
		e3 := f.newEvent(nil, auth.EventPasswordFailed, nil)
		must(t, f.store.RecordEvents(f.ctx, e1, e2, e3), "RecordEvents")
		if n := f.queueDepth(t); n != 5 {
			t.Errorf("WebhookQueueDepth = %d, want 5 (every: 3, used: 1, locked: 1)", n)
		}

		got := f.claimAll(t, f.now)
		wantEqual(t, deliveryKeys(got), keysOf(every.ID, e1.ID, every.ID, e2.ID, every.ID, e3.ID, used.ID, e1.ID, locked.ID, e2.ID),
			"the deliveries claimed")
		for _, d := range got {
			want := map[string]auth.Event{e1.ID: e1, e2.ID: e2, e3.ID: e3}[d.Event.ID]
			if want.Data == nil {
				want.Data = map[string]any{}
			}
			wantEqual(t, d.Event, want, "the event of delivery "+d.Webhook.ID)
			hook := map[string]auth.Webhook{every.ID: every, used.ID: used, locked.ID: locked}[d.Webhook.ID]
			hook.EventTypes = nil // not loaded with a delivery
			wantEqual(t, d.Webhook, hook, "the webhook of a delivery")
			if d.Attempts != 0 || d.Claim == "" {
				t.Errorf("a first claim: Attempts %d, Claim %q; want 0 and the claim", d.Attempts, d.Claim)
			}
		}
		// The other project's event goes to the other project's webhook only.
		ef := f.newEvent(nil, auth.EventPasswordFailed, nil)
		ef.ProjectID = other.ID
		must(t, f.store.RecordEvents(f.ctx, ef), "RecordEvents in the other project")
		wantEqual(t, deliveryKeys(f.claimAll(t, f.now)), keysOf(foreign.ID, ef.ID), "the other project's delivery")
	}},
	{"an action that is refused or rolls back writes no delivery; one that commits writes them", func(t *testing.T, f *fixture) {
		f.createWebhook(t, f.project)
		o := f.createOrganization(t)
		m := f.createMember(t, o)
		ghost := f.newMember(o)

		// A failing multi-row insert (the last row's key repeats the first's).
		evs := []auth.Event{f.newEvent(&m, auth.EventSessionRevoked, nil), f.newEvent(&m, auth.EventSessionRevoked, nil)}
		evs[1].ID = evs[0].ID
		if err := f.store.RecordEvents(f.ctx, evs...); err == nil {
			t.Fatalf("RecordEvents with a repeated key: no error")
		}
		// A guarded insert whose parent does not exist (CreateTOTP of an unknown member).
		reg := f.newTOTP(ghost)
		wantErr(t, f.store.CreateTOTP(f.ctx, f.project.ID, reg, newCodes(10), f.newEvent(&ghost, auth.EventTOTPEnrolled, nil)),
			auth.ErrMemberNotFound, "CreateTOTP for an unknown member")
		// A guarded delete that found nothing.
		wantErr(t, f.store.DeleteSession(f.ctx, f.project.ID, newID("member-session"), f.now, f.newEvent(&m, auth.EventSessionRevoked, nil)),
			auth.ErrSessionNotFound, "DeleteSession of an unknown session")
		// An apply that refuses.
		_, err := f.store.UpdateMember(f.ctx, f.project.ID, m.ID, func(*auth.Member) ([]auth.Event, error) {
			return []auth.Event{f.newEvent(&m, auth.EventMemberLocked, nil)}, errApply
		})
		wantErr(t, err, errApply, "UpdateMember with a refusing apply")
		if n := f.queueDepth(t); n != 0 {
			t.Errorf("after refused actions WebhookQueueDepth = %d, want 0", n)
		}
		if ds := f.claimAll(t, f.now); len(ds) != 0 {
			t.Errorf("after refused actions %d deliveries were claimable, want none", len(ds))
		}

		// The same paths, committed, write one delivery per event.
		reg = f.newTOTP(m)
		enrolled := f.newEvent(&m, auth.EventTOTPEnrolled, nil)
		must(t, f.store.CreateTOTP(f.ctx, f.project.ID, reg, newCodes(10), enrolled), "CreateTOTP")
		s := f.createSession(t, m)
		revoked := f.newEvent(&m, auth.EventSessionRevoked, nil)
		must(t, f.store.DeleteSession(f.ctx, f.project.ID, s.ID, f.now, revoked), "DeleteSession")
		failed := f.newEvent(&m, auth.EventTOTPFailed, nil)
		_, err = f.store.UpdateMember(f.ctx, f.project.ID, m.ID, func(*auth.Member) ([]auth.Event, error) { return []auth.Event{failed}, nil })
		must(t, err, "UpdateMember")
		created := f.newEvent(&m, auth.EventSessionCreated, nil)
		_, err = f.store.Complete(f.ctx, auth.Completion{ProjectID: f.project.ID, MemberID: m.ID, Now: f.now, NewSession: f.newSession(m),
			Events: func(auth.Member, auth.Completed) []auth.Event { return []auth.Event{created} }})
		must(t, err, "Complete")
		var got []string
		for _, d := range f.claimAll(t, f.now) {
			got = append(got, d.Event.ID)
		}
		slices.Sort(got)
		want := []string{enrolled.ID, revoked.ID, failed.ID, created.ID}
		slices.Sort(want)
		wantEqual(t, got, want, "the events delivered after committed actions")
	}},
	{"a lease holds a delivery for one claimer; an ended lease frees it", func(t *testing.T, f *fixture) {
		w := f.createWebhook(t, f.project)
		m := f.createMember(t, f.createOrganization(t))
		const n = 40
		evs := make([]auth.Event, n)
		for i := range evs {
			evs[i] = f.newEvent(&m, auth.EventRecoveryCodeFailed, map[string]any{"i": float64(i)})
		}
		must(t, f.store.RecordEvents(f.ctx, evs...), "RecordEvents")

		// Many claimers at once, each taking a few at a time until nothing is left.
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			seen = map[string]int{}
			errs []error
		)
		lease := 30 * time.Second
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					ds, err := f.store.ClaimWebhookDeliveries(f.ctx, uuid.NewString(), f.now, f.now.Add(lease), 3)
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					}
					for _, d := range ds {
						seen[d.Event.ID]++
					}
					mu.Unlock()
					if err != nil || len(ds) == 0 {
						return
					}
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			t.Errorf("a concurrent claim: %v", err)
		}
		if len(seen) != n {
			t.Errorf("the claimers got %d distinct deliveries, want all %d", len(seen), n)
		}
		for id, k := range seen {
			if k != 1 {
				t.Errorf("delivery of %s was claimed %d times while its lease held", id, k)
			}
		}

		// Leases still hold a millisecond before they end, and end at leaseUntil.
		if ds := f.claimAll(t, f.now.Add(lease-time.Millisecond)); len(ds) != 0 {
			t.Errorf("%d deliveries claimable before their leases ended, want none", len(ds))
		}
		again := f.claimAll(t, f.now.Add(lease))
		if len(again) != n {
			t.Fatalf("%d deliveries claimable once the leases ended, want %d", len(again), n)
		}
		// A claim that lapsed can no longer settle the delivery; the new one can.
		stale := again[0]
		stale.Claim = uuid.NewString()
		err := f.store.FinishWebhookDelivery(f.ctx, auth.WebhookAttempt{WebhookID: w.ID, EventID: stale.Event.ID, Claim: stale.Claim,
			Outcome: auth.AttemptDelivered, At: f.now, Status: 200})
		wantErr(t, err, auth.ErrWebhookClaimLost, "FinishWebhookDelivery under a lapsed claim")
		f.finish(t, again[0], auth.WebhookAttempt{Outcome: auth.AttemptDelivered, At: f.now.Add(lease), Status: 204})
	}},
	{"FinishWebhookDelivery records delivered, retry, failed and released", func(t *testing.T, f *fixture) {
		w := f.createWebhook(t, f.project)
		m := f.createMember(t, f.createOrganization(t))
		evs := make([]auth.Event, 4)
		for i := range evs {
			evs[i] = f.newEvent(&m, auth.EventTOTPFailed, nil)
			evs[i].Time = f.now.Add(-time.Duration(4-i) * time.Second) // oldest first, due oldest first
		}
		must(t, f.store.RecordEvents(f.ctx, evs...), "RecordEvents")
		// A claim with a limit takes the earliest due first.
		var ds []auth.WebhookDelivery
		for i := range evs {
			one, err := f.store.ClaimWebhookDeliveries(f.ctx, uuid.NewString(), f.now, f.now.Add(time.Minute), 1)
			must(t, err, "ClaimWebhookDeliveries")
			if len(one) != 1 || one[0].Event.ID != evs[i].ID {
				t.Fatalf("claim %d of one: %s, want the delivery of %s (earliest due first)", i, deliveryKeys(one), evs[i].ID)
			}
			ds = append(ds, one[0])
		}
		at := f.now.Add(1234 * time.Millisecond) // delivery times keep milliseconds
		next := f.now.Add(5500 * time.Millisecond)
		f.finish(t, ds[0], auth.WebhookAttempt{Outcome: auth.AttemptDelivered, At: at, Status: 200})
		f.finish(t, ds[1], auth.WebhookAttempt{Outcome: auth.AttemptRetry, At: at, NextAttemptAt: next, Status: 503, Error: "HTTP 503 Service Unavailable"})
		f.finish(t, ds[2], auth.WebhookAttempt{Outcome: auth.AttemptFailed, At: at, Error: "timeout after 10s"})
		f.finish(t, ds[3], auth.WebhookAttempt{Outcome: auth.AttemptReleased, At: at})

		wantEqual(t, f.deliveryOf(t, w, evs[0].ID), auth.WebhookDeliveryStatus{WebhookID: w.ID, EventID: evs[0].ID, EventType: evs[0].Type,
			EventTime: evs[0].Time, State: auth.DeliveryDelivered, Attempts: 1, LastAttemptAt: at, LastStatus: 200, FinishedAt: at}, "delivered")
		wantEqual(t, f.deliveryOf(t, w, evs[1].ID), auth.WebhookDeliveryStatus{WebhookID: w.ID, EventID: evs[1].ID, EventType: evs[1].Type,
			EventTime: evs[1].Time, State: auth.DeliveryPending, Attempts: 1, NextAttemptAt: next, LastAttemptAt: at, LastStatus: 503,
			LastError: "HTTP 503 Service Unavailable"}, "retry")
		wantEqual(t, f.deliveryOf(t, w, evs[2].ID), auth.WebhookDeliveryStatus{WebhookID: w.ID, EventID: evs[2].ID, EventType: evs[2].Type,
			EventTime: evs[2].Time, State: auth.DeliveryFailed, Attempts: 1, LastAttemptAt: at, LastError: "timeout after 10s", FinishedAt: at}, "failed")
		wantEqual(t, f.deliveryOf(t, w, evs[3].ID), auth.WebhookDeliveryStatus{WebhookID: w.ID, EventID: evs[3].ID, EventType: evs[3].Type,
			EventTime: evs[3].Time, State: auth.DeliveryPending, NextAttemptAt: evs[3].Time}, "released")
		if n := f.queueDepth(t); n != 2 {
			t.Errorf("WebhookQueueDepth = %d, want 2 (the retry and the released)", n)
		}
		// Settled once: the claim is spent.
		err := f.store.FinishWebhookDelivery(f.ctx, auth.WebhookAttempt{WebhookID: w.ID, EventID: evs[0].ID, Claim: ds[0].Claim, Outcome: auth.AttemptRetry, At: at, NextAttemptAt: next})
		wantErr(t, err, auth.ErrWebhookClaimLost, "FinishWebhookDelivery twice")

		// The released one is due at once; the retry at its time, not a millisecond before.
		wantEqual(t, deliveryKeys(f.claimAll(t, at)), keysOf(w.ID, evs[3].ID), "due at once after a release")
		if ds := f.claimAll(t, next.Add(-time.Millisecond)); len(ds) != 0 {
			t.Errorf("%d deliveries claimable before the retry time, want none", len(ds))
		}
		retried := f.claimAll(t, next)
		wantEqual(t, deliveryKeys(retried), keysOf(w.ID, evs[1].ID), "due at the retry time")
		if retried[0].Attempts != 1 {
			t.Errorf("the retried delivery says %d attempts before it, want 1", retried[0].Attempts)
		}
	}},
	{"DeleteWebhook stops its deliveries; Prune forgets finished ones", func(t *testing.T, f *fixture) {
		gone := f.createWebhook(t, f.project)
		kept := f.createWebhook(t, f.project)
		m := f.createMember(t, f.createOrganization(t))
		e1, e2 := f.newEvent(&m, auth.EventTOTPFailed, nil), f.newEvent(&m, auth.EventTOTPFailed, nil)
		e2.Time = f.now.Add(-time.Second)
		must(t, f.store.RecordEvents(f.ctx, e1, e2), "RecordEvents")
		inFlight := f.claimAll(t, f.now)
		must(t, f.store.DeleteWebhook(f.ctx, f.project.ID, gone.ID), "DeleteWebhook")
		for _, d := range inFlight {
			err := f.store.FinishWebhookDelivery(f.ctx, auth.WebhookAttempt{WebhookID: d.Webhook.ID, EventID: d.Event.ID, Claim: d.Claim,
				Outcome: auth.AttemptDelivered, At: f.now, Status: 200})
			if d.Webhook.ID == gone.ID {
				wantErr(t, err, auth.ErrWebhookClaimLost, "finishing a delivery of a deleted webhook")
			} else {
				must(t, err, "FinishWebhookDelivery")
			}
		}
		if ds := f.claimAll(t, f.now.Add(time.Hour)); len(ds) != 0 {
			t.Errorf("%d deliveries claimable after their webhook was deleted or they were delivered, want none", len(ds))
		}
		if n := f.queueDepth(t); n != 0 {
			t.Errorf("WebhookQueueDepth = %d after the delete, want 0", n)
		}
		statuses, err := f.store.WebhookDeliveries(f.ctx, f.project.ID, kept.ID, 10)
		must(t, err, "WebhookDeliveries")
		if len(statuses) != 2 || statuses[0].EventID != e1.ID || statuses[1].EventID != e2.ID {
			t.Errorf("WebhookDeliveries = %+v, want e1 then e2 (newest first)", statuses)
		}
		if one, err := f.store.WebhookDeliveries(f.ctx, f.project.ID, kept.ID, 1); err != nil || len(one) != 1 {
			t.Errorf("WebhookDeliveries with limit 1: %d, %v", len(one), err)
		}

		// A pending delivery is never pruned; finished ones go once before passes them.
		e3 := f.newEvent(&m, auth.EventTOTPFailed, nil)
		must(t, f.store.RecordEvents(f.ctx, e3), "RecordEvents")
		n, err := f.store.PruneWebhookDeliveries(f.ctx, f.now)
		must(t, err, "PruneWebhookDeliveries at the finish time")
		if n != 0 {
			t.Errorf("Prune before anything finished earlier: %d deleted, want 0", n)
		}
		n, err = f.store.PruneWebhookDeliveries(f.ctx, f.now.Add(time.Millisecond))
		must(t, err, "PruneWebhookDeliveries")
		if n != 2 {
			t.Errorf("Prune after the finish time: %d deleted, want 2", n)
		}
		statuses, err = f.store.WebhookDeliveries(f.ctx, f.project.ID, kept.ID, 10)
		must(t, err, "WebhookDeliveries after the prune")
		if len(statuses) != 1 || statuses[0].EventID != e3.ID || statuses[0].State != auth.DeliveryPending {
			t.Errorf("after the prune: %+v, want only the pending delivery of e3", statuses)
		}
	}},
}

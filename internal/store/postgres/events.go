package postgres

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sparekey/sparekey/internal/auth"
)

// eventArrays lays events out as parallel arrays, so one INSERT … SELECT FROM unnest(…) writes
// any number of them in one statement, and one prepared statement serves every count.
type eventArrays struct {
	projects, ids, types, orgs, members, requests, ips, agents, data []string
	times                                                            []time.Time
}

func newEventArrays(events []auth.Event) (eventArrays, error) {
	n := len(events)
	a := eventArrays{
		projects: make([]string, n), ids: make([]string, n), types: make([]string, n),
		orgs: make([]string, n), members: make([]string, n), requests: make([]string, n),
		ips: make([]string, n), agents: make([]string, n), data: make([]string, n),
		times: make([]time.Time, n),
	}
	for i := range events {
		e := &events[i]
		data := []byte("{}")
		if e.Data != nil {
			var err error
			if data, err = json.Marshal(e.Data); err != nil {
				return eventArrays{}, err
			}
		}
		a.projects[i], a.ids[i], a.types[i] = e.ProjectID, e.ID, e.Type
		a.orgs[i], a.members[i] = e.OrganizationID, e.MemberID
		a.requests[i], a.ips[i], a.agents[i] = e.RequestID, e.ClientIP, e.UserAgent
		a.data[i], a.times[i] = string(data), at(e.Time)
	}
	return a, nil
}

// args are the arrays in the order insertEventsFrom numbers them.
func (a eventArrays) args() []any {
	return []any{a.projects, a.times, a.ids, a.types, a.orgs, a.members, a.requests, a.ips, a.agents, a.data}
}

const eventColumns = `project_id, created_at, id, type, organization_id, member_id, request_id, client_ip, user_agent, data`

// insertEventsFrom is an INSERT of the events held in the ten arrays numbered from $first (see
// eventArrays.args). guard, when not "", is a FROM item that yields one row when the action the
// events record happened and none when it did not: a statement of the same batch or CTE that
// found nothing to write then records nothing either, although the batch goes on to COMMIT.
func insertEventsFrom(guard string, first int) string {
	p := func(i int, typ string) string { return "$" + strconv.Itoa(first+i) + "::" + typ + "[]" }
	src := `unnest(` + p(0, "text") + `, ` + p(1, "timestamptz") + `, ` + p(2, "text") + `, ` + p(3, "text") + `, ` +
		p(4, "text") + `, ` + p(5, "text") + `, ` + p(6, "text") + `, ` + p(7, "text") + `, ` + p(8, "text") + `, ` + p(9, "text") +
		`) AS e (` + eventColumns + `)`
	if guard != "" {
		src = guard + `, ` + src
	}
	return `INSERT INTO events (` + eventColumns + `)
		SELECT e.project_id, e.created_at, e.id, e.type, nullif(e.organization_id, ''), nullif(e.member_id, ''),
			e.request_id, e.client_ip, e.user_agent, e.data::jsonb
		FROM ` + src
}

// insertEvents records events unconditionally: in a batch whose decisions an earlier batch made.
//
// Every INSERT INTO events, this one and insertEventsFrom's inside other statements' CTEs, also
// writes the events' webhook deliveries through the statement trigger events_webhook_outbox (the
// outbox; see webhooks.go): a data-modifying CTE cannot hold another, so the trigger is what
// reaches them all.
var insertEvents = insertEventsFrom("", 1)

// queueEvents queues the insert of events, if any, in b.
func queueEvents(b *pgx.Batch, events []auth.Event) error {
	if len(events) == 0 {
		return nil
	}
	a, err := newEventArrays(events)
	if err != nil {
		return err
	}
	b.Queue(insertEvents, a.args()...)
	return nil
}

func (db *DB) RecordEvents(ctx context.Context, events ...auth.Event) error {
	if len(events) == 0 {
		return nil
	}
	a, err := newEventArrays(events)
	if err != nil {
		return err
	}
	return db.retry(ctx, func() error {
		_, err := db.pool.Exec(ctx, insertEvents, a.args()...)
		return err
	})
}

// Events builds its query from the filters present.
func (db *DB) Events(ctx context.Context, projectID string, q auth.EventQuery) (auth.EventPage, error) {
	page := auth.EventPage{Events: []auth.Event{}}
	if !storable(q.OrganizationID, q.MemberID) || !storable(q.Types...) || q.After != nil && !storable(q.After.ID) {
		return page, nil // no stored event can match
	}
	var (
		where = []string{`project_id = $1`}
		args  = []any{projectID}
	)
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if len(q.Types) > 0 {
		where = append(where, `type = ANY(`+param(q.Types)+`::text[])`)
	}
	if q.OrganizationID != "" {
		where = append(where, `organization_id = `+param(q.OrganizationID))
	}
	if q.MemberID != "" {
		where = append(where, `member_id = `+param(q.MemberID))
	}
	if !q.Since.IsZero() {
		where = append(where, `created_at >= `+param(at(q.Since)))
	}
	if !q.Until.IsZero() {
		where = append(where, `created_at < `+param(at(q.Until)))
	}
	if q.After != nil {
		where = append(where, `(created_at, id) < (`+param(at(q.After.Time))+`, `+param(q.After.ID)+`)`)
	}
	limit := param(q.Limit + 1)
	rows, err := db.pool.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE `+strings.Join(where, ` AND `)+
		` ORDER BY created_at DESC, id DESC LIMIT `+limit, args...)
	if err != nil {
		return auth.EventPage{}, err
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return auth.EventPage{}, err
		}
		page.Events = append(page.Events, e)
	}
	if err := rows.Err(); err != nil {
		return auth.EventPage{}, err
	}
	if len(page.Events) > q.Limit {
		page.Events, page.More = page.Events[:q.Limit], true
	}
	return page, nil
}

func scanEvent(r scanner) (auth.Event, error) {
	var (
		e           auth.Event
		created     pgtype.Timestamptz
		org, member pgtype.Text
		data        []byte
	)
	if err := r.Scan(&e.ProjectID, &created, &e.ID, &e.Type, &org, &member, &e.RequestID, &e.ClientIP, &e.UserAgent, &data); err != nil {
		return auth.Event{}, err
	}
	if err := json.Unmarshal(data, &e.Data); err != nil {
		return auth.Event{}, err
	}
	e.Time, e.OrganizationID, e.MemberID = fromTS(created), org.String, member.String
	return e, nil
}

// pruneEvents deletes a batch of a project's events older than a cutoff: $2, or the oldest event
// with a pending delivery if that is older. It walks the primary key (project, time, id).
// $1 project, $2 before, $3 batch size.
const pruneEvents = `WITH doomed AS (
		SELECT created_at, id FROM events
		WHERE project_id = $1 AND created_at < LEAST($2::timestamptz, coalesce(
			(SELECT min(d.event_created_at) FROM webhook_deliveries d WHERE d.project_id = $1 AND d.state = 'pending'), $2::timestamptz))
		ORDER BY created_at, id LIMIT $3
	)
	DELETE FROM events e USING doomed
	WHERE e.project_id = $1 AND e.created_at = doomed.created_at AND e.id = doomed.id`

func (db *DB) DeleteEventsBefore(ctx context.Context, projectID string, before time.Time, limit int) (int64, error) {
	if !storable(projectID) {
		return 0, nil
	}
	var n int64
	err := db.retry(ctx, func() error {
		tag, err := db.pool.Exec(ctx, pruneEvents, projectID, at(before), limit)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

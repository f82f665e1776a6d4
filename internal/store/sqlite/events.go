package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
)

// eventRowsPerInsert bounds the rows of one event INSERT. An action records a handful of events
// (recover: two to four), which go in one statement; a revoke of many sessions takes several.
// Each row count is its own prepared statement, so the bound also bounds the cache.
const eventRowsPerInsert = 8

const eventColumns = `project_id, created_at, id, type, organization_id, member_id, request_id, client_ip, user_agent, data`

// eventInserts[n] is the INSERT of n events.
var eventInserts = func() [eventRowsPerInsert + 1]string {
	var out [eventRowsPerInsert + 1]string
	for n := 1; n <= eventRowsPerInsert; n++ {
		out[n] = `INSERT INTO events (` + eventColumns + `) VALUES ` +
			strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?), `, n), ", ")
	}
	return out
}()

// insertEvents writes events in the caller's transaction. Each row also writes its webhook
// deliveries, through the trigger events_webhook_outbox (the outbox; see webhooks.go).
func insertEvents(ctx context.Context, tx *txn, events []auth.Event) error {
	for len(events) > 0 {
		n := min(len(events), eventRowsPerInsert)
		args := make([]any, 0, 10*n)
		for i := range events[:n] {
			e := &events[i]
			data, err := eventData(e)
			if err != nil {
				return err
			}
			args = append(args, e.ProjectID, e.Time.Unix(), e.ID, e.Type, nullString(e.OrganizationID), nullString(e.MemberID),
				e.RequestID, e.ClientIP, e.UserAgent, data)
		}
		if _, err := tx.exec(ctx, eventInserts[n], args...); err != nil {
			return err
		}
		events = events[n:]
	}
	return nil
}

// eventData encodes an event's details; none is the empty object.
func eventData(e *auth.Event) (string, error) {
	if e.Data == nil {
		return "{}", nil
	}
	b, err := json.Marshal(e.Data)
	return string(b), err
}

func (db *DB) RecordEvents(ctx context.Context, events ...auth.Event) error {
	if len(events) == 0 {
		return nil
	}
	return db.tx(ctx, func(tx *txn) error { return insertEvents(ctx, tx, events) })
}

// Events builds its query from the filters present. It runs unprepared: listing events is not a
// hot path, and its many shapes would only crowd the statement cache.
func (db *DB) Events(ctx context.Context, projectID string, q auth.EventQuery) (auth.EventPage, error) {
	var (
		where = []string{`project_id = ?`}
		args  = []any{projectID}
	)
	if len(q.Types) > 0 {
		where = append(where, `type IN (`+strings.TrimSuffix(strings.Repeat(`?, `, len(q.Types)), ", ")+`)`)
		for _, t := range q.Types {
			args = append(args, t)
		}
	}
	if q.OrganizationID != "" {
		where, args = append(where, `organization_id = ?`), append(args, q.OrganizationID)
	}
	if q.MemberID != "" {
		where, args = append(where, `member_id = ?`), append(args, q.MemberID)
	}
	if !q.Since.IsZero() {
		where, args = append(where, `created_at >= ?`), append(args, q.Since.Unix())
	}
	if !q.Until.IsZero() {
		where, args = append(where, `created_at < ?`), append(args, q.Until.Unix())
	}
	if q.After != nil {
		where, args = append(where, `(created_at, id) < (?, ?)`), append(args, q.After.Time.Unix(), q.After.ID)
	}
	args = append(args, q.Limit+1)
	rows, err := db.read.db.QueryContext(ctx, `SELECT `+eventColumns+` FROM events WHERE `+strings.Join(where, ` AND `)+
		` ORDER BY created_at DESC, id DESC LIMIT ?`, args...)
	if err != nil {
		return auth.EventPage{}, err
	}
	defer rows.Close()
	page := auth.EventPage{Events: []auth.Event{}}
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
		at          int64
		org, member sql.NullString
		data        string
	)
	if err := r.Scan(&e.ProjectID, &at, &e.ID, &e.Type, &org, &member, &e.RequestID, &e.ClientIP, &e.UserAgent, &data); err != nil {
		return auth.Event{}, err
	}
	if err := decodeStored(data, &e.Data); err != nil {
		return auth.Event{}, err
	}
	e.Time, e.OrganizationID, e.MemberID = time.Unix(at, 0).UTC(), org.String, member.String
	return e, nil
}

// pruneEvents deletes a batch of a project's events older than a cutoff: ?2, or the oldest event
// with a pending delivery if that is older. It walks the primary key (project, time, id), so it
// reads only what it deletes. ?1 project, ?2 before (Unix seconds), ?3 batch size.
const pruneEvents = `DELETE FROM events WHERE project_id = ?1 AND (created_at, id) IN (
	SELECT created_at, id FROM events WHERE project_id = ?1 AND created_at < min(?2, coalesce(
		(SELECT min(d.event_created_at) FROM webhook_deliveries d WHERE d.project_id = ?1 AND d.state = 'pending'), ?2))
	ORDER BY created_at, id LIMIT ?3)`

func (db *DB) DeleteEventsBefore(ctx context.Context, projectID string, before time.Time, limit int) (int64, error) {
	var n int64
	err := db.tx(ctx, func(tx *txn) error {
		res, err := tx.exec(ctx, pruneEvents, projectID, before.Unix(), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
)

// Webhook deliveries are written by the trigger events_webhook_outbox (migrations/0001_init.sql)
// with each event; this file reads and settles them. Delivery times are Unix milliseconds.

func ms(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

const webhookColumns = `id, project_id, url, event_types, sealed_secret, created_at`

func scanWebhook(r scanner) (auth.Webhook, error) {
	var (
		w       auth.Webhook
		types   string
		created sql.NullInt64
	)
	if err := r.Scan(&w.ID, &w.ProjectID, &w.URL, &types, &w.SealedSecret, &created); err != nil {
		return auth.Webhook{}, err
	}
	if err := json.Unmarshal([]byte(types), &w.EventTypes); err != nil {
		return auth.Webhook{}, err
	}
	w.CreatedAt = fromUnix(created)
	return w, nil
}

func (db *DB) CreateWebhook(ctx context.Context, w auth.Webhook, max int, events ...auth.Event) error {
	types := w.EventTypes
	if types == nil {
		types = []string{}
	}
	typesJSON, err := json.Marshal(types)
	if err != nil {
		return err
	}
	// The single writer makes count-then-insert exact.
	return db.tx(ctx, func(tx *txn) error {
		var n int
		if err := tx.queryRow(ctx, `SELECT count(*) FROM webhooks WHERE project_id = ?`, w.ProjectID).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return auth.ErrTooManyWebhooks
		}
		// The events first: the outbox trigger then gives them to the project's other webhooks,
		// not to this one, which is not sent the news of its own registration.
		if err := insertEvents(ctx, tx, events); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO webhooks (`+webhookColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
			w.ID, w.ProjectID, w.URL, string(typesJSON), w.SealedSecret, unix(w.CreatedAt))
		return err
	})
}

func (db *DB) Webhooks(ctx context.Context, projectID string) ([]auth.Webhook, error) {
	rows, err := db.read.query(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE project_id = ? ORDER BY created_at, id`, projectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []auth.Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

func (db *DB) DeleteWebhook(ctx context.Context, projectID, id string, events ...auth.Event) error {
	return db.tx(ctx, func(tx *txn) error {
		res, err := tx.exec(ctx, `DELETE FROM webhooks WHERE project_id = ? AND id = ?`, projectID, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return auth.ErrWebhookNotFound
		}
		if _, err := tx.exec(ctx, `DELETE FROM webhook_deliveries WHERE webhook_id = ?`, id); err != nil {
			return err
		}
		return insertEvents(ctx, tx, events)
	})
}

// dueWhere selects claimable deliveries: ?1 is now in Unix milliseconds.
const dueWhere = `d.state = 'pending' AND d.next_attempt_at <= ?1 AND coalesce(d.claimed_until, 0) <= ?1
	AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id)`

func (db *DB) ClaimWebhookDeliveries(ctx context.Context, claim string, now, leaseUntil time.Time, limit int) ([]auth.WebhookDelivery, error) {
	if limit < 1 {
		return nil, nil
	}
	// Most polls find nothing: ask the read pool first, so an idle dispatcher never queues for
	// the one write connection.
	var due bool
	if err := db.read.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE `+dueWhere+`)`, now.UnixMilli()).Scan(&due); err != nil {
		return nil, err
	}
	if !due {
		return nil, nil
	}
	var out []auth.WebhookDelivery
	err := db.tx(ctx, func(tx *txn) error {
		out = nil
		rows, err := tx.query(ctx, `UPDATE webhook_deliveries SET claim = ?2, claimed_until = ?3
			WHERE (webhook_id, event_id) IN (
				SELECT d.webhook_id, d.event_id FROM webhook_deliveries d WHERE `+dueWhere+`
				ORDER BY d.next_attempt_at LIMIT ?4)
			RETURNING webhook_id, event_id, project_id, event_created_at, attempts`,
			now.UnixMilli(), claim, leaseUntil.UnixMilli(), limit)
		if err != nil {
			return err
		}
		type key struct {
			webhookID, eventID, projectID string
			eventAt                       int64
			attempts                      int
		}
		var keys []key
		for rows.Next() {
			var k key
			if err := rows.Scan(&k.webhookID, &k.eventID, &k.projectID, &k.eventAt, &k.attempts); err != nil {
				rows.Close()
				return err
			}
			keys = append(keys, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, k := range keys {
			d := auth.WebhookDelivery{Claim: claim, Attempts: k.attempts}
			var created sql.NullInt64
			row := tx.queryRow(ctx, `SELECT w.url, w.sealed_secret, w.created_at, e.project_id, e.created_at, e.id, e.type,
				e.organization_id, e.member_id, e.request_id, e.client_ip, e.user_agent, e.data
				FROM webhooks w, events e
				WHERE w.id = ? AND e.project_id = ? AND e.created_at = ? AND e.id = ?`, k.webhookID, k.projectID, k.eventAt, k.eventID)
			var (
				at          int64
				org, member sql.NullString
				data        string
				e           = &d.Event
			)
			if err := row.Scan(&d.Webhook.URL, &d.Webhook.SealedSecret, &created,
				&e.ProjectID, &at, &e.ID, &e.Type, &org, &member, &e.RequestID, &e.ClientIP, &e.UserAgent, &data); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(data), &e.Data); err != nil {
				return err
			}
			e.Time, e.OrganizationID, e.MemberID = time.Unix(at, 0).UTC(), org.String, member.String
			d.Webhook.ID, d.Webhook.ProjectID, d.Webhook.CreatedAt = k.webhookID, k.projectID, fromUnix(created)
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

func (db *DB) FinishWebhookDelivery(ctx context.Context, a auth.WebhookAttempt) error {
	var (
		q    string
		args []any
	)
	switch a.Outcome {
	case auth.AttemptDelivered, auth.AttemptFailed:
		state := auth.DeliveryDelivered
		if a.Outcome == auth.AttemptFailed {
			state = auth.DeliveryFailed
		}
		q = `UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, last_attempt_at = ?, last_status = ?,
			last_error = ?, finished_at = ?, claim = NULL, claimed_until = NULL
			WHERE webhook_id = ? AND event_id = ? AND claim = ? AND state = 'pending'`
		args = []any{state, ms(a.At), nullStatus(a.Status), nullString(a.Error), ms(a.At), a.WebhookID, a.EventID, a.Claim}
	case auth.AttemptRetry:
		q = `UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?, last_attempt_at = ?, last_status = ?,
			last_error = ?, claim = NULL, claimed_until = NULL
			WHERE webhook_id = ? AND event_id = ? AND claim = ? AND state = 'pending'`
		args = []any{ms(a.NextAttemptAt), ms(a.At), nullStatus(a.Status), nullString(a.Error), a.WebhookID, a.EventID, a.Claim}
	case auth.AttemptReleased:
		q = `UPDATE webhook_deliveries SET claim = NULL, claimed_until = NULL
			WHERE webhook_id = ? AND event_id = ? AND claim = ? AND state = 'pending'`
		args = []any{a.WebhookID, a.EventID, a.Claim}
	default:
		return errors.New("sqlite: unknown webhook attempt outcome " + a.Outcome)
	}
	return db.tx(ctx, func(tx *txn) error {
		res, err := tx.exec(ctx, q, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return auth.ErrWebhookClaimLost
		}
		return nil
	})
}

func nullStatus(s int) any {
	if s == 0 {
		return nil
	}
	return s
}

func (db *DB) WebhookQueueDepth(ctx context.Context) (int64, error) {
	var n int64
	err := db.read.queryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'`).Scan(&n)
	return n, err
}

func (db *DB) PruneWebhookDeliveries(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.tx(ctx, func(tx *txn) error {
		res, err := tx.exec(ctx, `DELETE FROM webhook_deliveries WHERE state <> 'pending' AND finished_at < ?`, before.UnixMilli())
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		res, err = tx.exec(ctx, `DELETE FROM webhook_deliveries WHERE NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.id = webhook_id)`)
		if err != nil {
			return err
		}
		orphans, _ := res.RowsAffected()
		n += orphans
		return nil
	})
	return n, err
}

func (db *DB) WebhookDeliveries(ctx context.Context, projectID, webhookID string, limit int) ([]auth.WebhookDeliveryStatus, error) {
	var exists bool
	if err := db.read.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhooks WHERE id = ? AND project_id = ?)`, webhookID, projectID).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, auth.ErrWebhookNotFound
	}
	rows, err := db.read.query(ctx, `SELECT d.webhook_id, d.event_id, e.type, d.event_created_at, d.state, d.attempts,
			d.next_attempt_at, d.last_attempt_at, d.last_status, d.last_error, d.finished_at
		FROM webhook_deliveries d JOIN events e ON e.project_id = d.project_id AND e.created_at = d.event_created_at AND e.id = d.event_id
		WHERE d.webhook_id = ? AND d.project_id = ?
		ORDER BY d.event_created_at DESC, d.event_id DESC LIMIT ?`, webhookID, projectID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []auth.WebhookDeliveryStatus{}
	for rows.Next() {
		var (
			s                          auth.WebhookDeliveryStatus
			eventAt                    int64
			next, last, status, finish sql.NullInt64
			lastErr                    sql.NullString
		)
		if err := rows.Scan(&s.WebhookID, &s.EventID, &s.EventType, &eventAt, &s.State, &s.Attempts,
			&next, &last, &status, &lastErr, &finish); err != nil {
			return nil, err
		}
		s.EventTime, s.LastAttemptAt, s.FinishedAt = time.Unix(eventAt, 0).UTC(), fromMS(last), fromMS(finish)
		if s.State == auth.DeliveryPending {
			s.NextAttemptAt = fromMS(next)
		}
		s.LastStatus, s.LastError = int(status.Int64), lastErr.String
		out = append(out, s)
	}
	return out, rows.Err()
}

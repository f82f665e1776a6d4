package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sparekey/sparekey/internal/auth"
)

// Webhook deliveries are written by the trigger events_webhook_outbox (migrations/0001_init.sql)
// with each statement that writes events; this file reads and settles them. Delivery times keep
// milliseconds, on both stores alike.

func msTS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Truncate(time.Millisecond)
}

const webhookColumns = `id, project_id, url, event_types, sealed_secret, created_at`

func scanWebhook(r scanner) (auth.Webhook, error) {
	var (
		w       auth.Webhook
		created pgtype.Timestamptz
	)
	if err := r.Scan(&w.ID, &w.ProjectID, &w.URL, &w.EventTypes, &w.SealedSecret, &created); err != nil {
		return auth.Webhook{}, err
	}
	if w.EventTypes == nil {
		w.EventTypes = []string{}
	}
	w.CreatedAt = fromTS(created)
	return w, nil
}

func (db *DB) CreateWebhook(ctx context.Context, w auth.Webhook, max int, events ...auth.Event) error {
	if !storable(append([]string{w.ID, w.ProjectID, w.URL}, w.EventTypes...)...) {
		return auth.ErrInvalidRequestValue
	}
	types := w.EventTypes
	if types == nil {
		types = []string{}
	}
	a, err := newEventArrays(events)
	if err != nil {
		return err
	}
	return db.retry(ctx, func() error {
		return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			// The project's row lock serialises the count and the insert of concurrent creations;
			// NO KEY UPDATE leaves the inserts that reference the project (organizations, keys)
			// free to go on. The count is a statement of its own: at READ COMMITTED it then sees
			// the webhooks of a creation that held the lock before us.
			tag, err := tx.Exec(ctx, `SELECT 1 FROM projects WHERE id = $1 FOR NO KEY UPDATE`, w.ProjectID)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return auth.ErrProjectNotFound
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM webhooks WHERE project_id = $1`, w.ProjectID).Scan(&n); err != nil {
				return err
			}
			if n >= max {
				return auth.ErrTooManyWebhooks
			}
			// The events first: the outbox trigger then gives them to the project's other
			// webhooks, not to this one, which is not sent the news of its own registration.
			if len(events) > 0 {
				if _, err := tx.Exec(ctx, insertEvents, a.args()...); err != nil {
					return err
				}
			}
			_, err = tx.Exec(ctx, `INSERT INTO webhooks (`+webhookColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
				w.ID, w.ProjectID, w.URL, types, w.SealedSecret, ts(w.CreatedAt))
			return err
		})
	})
}

func (db *DB) Webhooks(ctx context.Context, projectID string) ([]auth.Webhook, error) {
	out := []auth.Webhook{}
	if !storable(projectID) {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE project_id = $1 ORDER BY created_at, id`, projectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// deleteWebhook deletes the webhook and, when there was one, its deliveries and records the
// events ($3 on, see eventArrays.args), in one statement.
var deleteWebhook = `WITH w AS (
		DELETE FROM webhooks WHERE project_id = $1 AND id = $2 RETURNING id
	), d AS (
		DELETE FROM webhook_deliveries WHERE webhook_id IN (SELECT id FROM w)
	), e AS (
		` + insertEventsFrom(`(SELECT 1 FROM w) AS found`, 3) + `
	)
	SELECT count(*) FROM w`

func (db *DB) DeleteWebhook(ctx context.Context, projectID, id string, events ...auth.Event) error {
	if !storable(projectID, id) {
		return auth.ErrWebhookNotFound
	}
	a, err := newEventArrays(events)
	if err != nil {
		return err
	}
	return db.retry(ctx, func() error {
		var n int
		if err := db.pool.QueryRow(ctx, deleteWebhook, append([]any{projectID, id}, a.args()...)...).Scan(&n); err != nil {
			return err
		}
		if n != 1 {
			return auth.ErrWebhookNotFound
		}
		return nil
	})
}

// claimDeliveries leases the due deliveries in one statement, so in one short transaction:
// FOR UPDATE SKIP LOCKED passes over rows another replica is leasing at this moment, and a row
// it leased a moment ago no longer matches (its claimed_until is re-checked on the locked row).
// $1 now, $2 claim, $3 lease end, $4 limit.
const claimDeliveries = `WITH due AS MATERIALIZED (
		SELECT x.webhook_id, x.event_id FROM webhook_deliveries x
		WHERE x.state = 'pending' AND x.next_attempt_at <= $1 AND (x.claimed_until IS NULL OR x.claimed_until <= $1)
			AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = x.webhook_id)
		ORDER BY x.next_attempt_at
		LIMIT $4
		FOR UPDATE SKIP LOCKED
	), claimed AS (
		UPDATE webhook_deliveries d SET claim = $2, claimed_until = $3
		FROM due WHERE d.webhook_id = due.webhook_id AND d.event_id = due.event_id
		RETURNING d.webhook_id, d.event_id, d.project_id, d.event_created_at, d.attempts
	)
	SELECT c.webhook_id, c.attempts, w.url, w.sealed_secret, w.created_at,
		e.project_id, e.created_at, e.id, e.type, e.organization_id, e.member_id, e.request_id, e.client_ip, e.user_agent, e.data
	FROM claimed c
	JOIN webhooks w ON w.id = c.webhook_id
	JOIN events e ON e.project_id = c.project_id AND e.created_at = c.event_created_at AND e.id = c.event_id`

func (db *DB) ClaimWebhookDeliveries(ctx context.Context, claim string, now, leaseUntil time.Time, limit int) ([]auth.WebhookDelivery, error) {
	if limit < 1 {
		return nil, nil
	}
	var out []auth.WebhookDelivery
	err := db.retry(ctx, func() error {
		out = nil
		rows, err := db.pool.Query(ctx, claimDeliveries, msTS(now), claim, msTS(leaseUntil), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				d           = auth.WebhookDelivery{Claim: claim}
				e           = &d.Event
				created, at pgtype.Timestamptz
				org, member pgtype.Text
				data        []byte
			)
			if err := rows.Scan(&d.Webhook.ID, &d.Attempts, &d.Webhook.URL, &d.Webhook.SealedSecret, &created,
				&e.ProjectID, &at, &e.ID, &e.Type, &org, &member, &e.RequestID, &e.ClientIP, &e.UserAgent, &data); err != nil {
				return err
			}
			if err := json.Unmarshal(data, &e.Data); err != nil {
				return err
			}
			e.Time, e.OrganizationID, e.MemberID = fromTS(at), org.String, member.String
			d.Webhook.ProjectID, d.Webhook.CreatedAt = e.ProjectID, fromTS(created)
			out = append(out, d)
		}
		return rows.Err()
	})
	return out, err
}

func (db *DB) FinishWebhookDelivery(ctx context.Context, a auth.WebhookAttempt) error {
	if !storable(a.WebhookID, a.EventID, a.Claim, a.Error) {
		return auth.ErrWebhookClaimLost
	}
	var (
		q    string
		args []any
	)
	key := `WHERE webhook_id = $1 AND event_id = $2 AND claim = $3 AND state = 'pending'`
	switch a.Outcome {
	case auth.AttemptDelivered, auth.AttemptFailed:
		state := auth.DeliveryDelivered
		if a.Outcome == auth.AttemptFailed {
			state = auth.DeliveryFailed
		}
		q = `UPDATE webhook_deliveries SET state = $4, attempts = attempts + 1, last_attempt_at = $5, last_status = $6,
			last_error = $7, finished_at = $5, claim = NULL, claimed_until = NULL ` + key
		args = []any{a.WebhookID, a.EventID, a.Claim, state, msTS(a.At), nullStatus(a.Status), nullString(a.Error)}
	case auth.AttemptRetry:
		q = `UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $4, last_attempt_at = $5, last_status = $6,
			last_error = $7, claim = NULL, claimed_until = NULL ` + key
		args = []any{a.WebhookID, a.EventID, a.Claim, msTS(a.NextAttemptAt), msTS(a.At), nullStatus(a.Status), nullString(a.Error)}
	case auth.AttemptReleased:
		q = `UPDATE webhook_deliveries SET claim = NULL, claimed_until = NULL ` + key
		args = []any{a.WebhookID, a.EventID, a.Claim}
	default:
		return errors.New("postgres: unknown webhook attempt outcome " + a.Outcome)
	}
	return db.retry(ctx, func() error {
		tag, err := db.pool.Exec(ctx, q, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
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
	err := db.pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'`).Scan(&n)
	return n, err
}

func (db *DB) PruneWebhookDeliveries(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.retry(ctx, func() error {
		tag, err := db.pool.Exec(ctx, `DELETE FROM webhook_deliveries d
			WHERE (d.state <> 'pending' AND d.finished_at < $1)
				OR NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id)`, msTS(before))
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

func (db *DB) WebhookDeliveries(ctx context.Context, projectID, webhookID string, limit int) ([]auth.WebhookDeliveryStatus, error) {
	if !storable(projectID, webhookID) {
		return nil, auth.ErrWebhookNotFound
	}
	var exists bool
	if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhooks WHERE id = $1 AND project_id = $2)`, webhookID, projectID).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, auth.ErrWebhookNotFound
	}
	rows, err := db.pool.Query(ctx, `SELECT d.webhook_id, d.event_id, e.type, d.event_created_at, d.state, d.attempts,
			d.next_attempt_at, d.last_attempt_at, d.last_status, d.last_error, d.finished_at
		FROM webhook_deliveries d JOIN events e ON e.project_id = d.project_id AND e.created_at = d.event_created_at AND e.id = d.event_id
		WHERE d.webhook_id = $1 AND d.project_id = $2
		ORDER BY d.event_created_at DESC, d.event_id DESC LIMIT $3`, webhookID, projectID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []auth.WebhookDeliveryStatus{}
	for rows.Next() {
		var (
			s                           auth.WebhookDeliveryStatus
			eventAt, next, last, finish pgtype.Timestamptz
			status                      pgtype.Int4
			lastErr                     pgtype.Text
		)
		if err := rows.Scan(&s.WebhookID, &s.EventID, &s.EventType, &eventAt, &s.State, &s.Attempts,
			&next, &last, &status, &lastErr, &finish); err != nil {
			return nil, err
		}
		s.EventTime, s.LastAttemptAt, s.FinishedAt = fromTS(eventAt), fromTS(last), fromTS(finish)
		if s.State == auth.DeliveryPending {
			s.NextAttemptAt = fromTS(next)
		}
		s.LastStatus, s.LastError = int(status.Int32), lastErr.String
		out = append(out, s)
	}
	return out, rows.Err()
}

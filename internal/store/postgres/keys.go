package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/store/sealedcolumn"
)

// queueInsertSigningKey queues the insert of one signing key row; jwk is the key's JWK as JSON.
func queueInsertSigningKey(b *pgx.Batch, key auth.SigningKey, jwk []byte) {
	b.Queue(`INSERT INTO signing_keys (kid, project_id, sealed_private_key, jwk, created_at, activates_at, retires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		key.KID, key.ProjectID, key.SealedPrivateKey, jwk, ts(key.CreatedAt), ts(key.ActivatesAt), ts(key.RetiresAt))
}

func (db *DB) AddSigningKey(ctx context.Context, key auth.SigningKey, retireAt time.Time) error {
	if !storable(key.ProjectID) {
		return auth.ErrProjectNotFound
	}
	jwk, err := json.Marshal(key.JWK)
	if err != nil {
		return err
	}
	return db.tx(ctx, func(tx *txn) error {
		b := &pgx.Batch{}
		// Rotations of one project take turns, so each sees the key the one before it added and
		// retires it: a concurrent one would otherwise miss it, leaving it never to retire. NO KEY
		// UPDATE does not block the foreign-key checks of rows inserted into the project meanwhile.
		b.Queue(`SELECT 1 FROM projects WHERE id = $1 FOR NO KEY UPDATE`, key.ProjectID)
		b.Queue(`DELETE FROM signing_keys WHERE project_id = $1 AND retires_at < $2`, key.ProjectID, ts(key.CreatedAt))
		b.Queue(`UPDATE signing_keys SET retires_at = $1 WHERE project_id = $2 AND retires_at IS NULL`, ts(retireAt), key.ProjectID)
		// An unknown project fails the insert's foreign key: ErrProjectNotFound, nothing written.
		queueInsertSigningKey(b, key, jwk)
		return tx.commitWith(ctx, b)
	})
}

// SealedValues pages by the column's key, which is COLLATE "C": byte order, as SQLite's.
func (db *DB) SealedValues(ctx context.Context, column auth.SealedColumn, after string, limit int) ([]auth.SealedValue, error) {
	c, err := sealedcolumn.Lookup(column)
	if err != nil {
		return nil, err
	}
	if !storable(after) {
		return nil, fmt.Errorf("postgres: sealed values after %q: not a key any row can hold", after)
	}
	rows, err := db.pool.Query(ctx, fmt.Sprintf(`SELECT %s, %s, %s, %s FROM %s WHERE %s > $1 AND %s IS NOT NULL ORDER BY %s LIMIT $2`,
		c.Key, c.Owner, c.ID, c.Value, c.Table, c.Key, c.Value, c.Key), after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []auth.SealedValue
	for rows.Next() {
		var v auth.SealedValue
		if err := rows.Scan(&v.Row, &v.Owner, &v.ID, &v.Sealed); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (db *DB) CountSealedValues(ctx context.Context, column auth.SealedColumn) (int, error) {
	c, err := sealedcolumn.Lookup(column)
	if err != nil {
		return 0, err
	}
	var n int
	err = db.pool.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s IS NOT NULL`, c.Table, c.Value)).Scan(&n)
	return n, err
}

func (db *DB) ReplaceSealedValues(ctx context.Context, column auth.SealedColumn, rs []auth.SealedReplacement) (int, error) {
	c, err := sealedcolumn.Lookup(column)
	if err != nil {
		return 0, err
	}
	if len(rs) == 0 {
		return 0, nil
	}
	q := fmt.Sprintf(`UPDATE %s SET %s = $1 WHERE %s = $2 AND %s = $3`, c.Table, c.Value, c.Key, c.Value)
	var changed int
	err = db.tx(ctx, func(tx *txn) error {
		changed = 0
		b := &pgx.Batch{}
		for _, r := range rs {
			b.Queue(q, r.New, r.Row, r.Old).Exec(func(tag pgconn.CommandTag) error {
				changed += int(tag.RowsAffected())
				return nil
			})
		}
		return tx.commitWith(ctx, b)
	})
	return changed, err
}

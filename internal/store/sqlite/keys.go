package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/store/sealedcolumn"
)

// insertSigningKey writes one signing key row; jwk is the key's JWK as JSON.
func insertSigningKey(ctx context.Context, tx *txn, key auth.SigningKey, jwk string) error {
	_, err := tx.exec(ctx, `INSERT INTO signing_keys (kid, project_id, sealed_private_key, jwk, created_at, activates_at, retires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		key.KID, key.ProjectID, key.SealedPrivateKey, jwk, unix(key.CreatedAt), unix(key.ActivatesAt), unix(key.RetiresAt))
	return err
}

func (db *DB) AddSigningKey(ctx context.Context, key auth.SigningKey, retireAt time.Time) error {
	jwk, err := json.Marshal(key.JWK)
	if err != nil {
		return err
	}
	return db.tx(ctx, func(tx *txn) error {
		var n int
		if err := tx.queryRow(ctx, `SELECT count(*) FROM projects WHERE id = ?`, key.ProjectID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return auth.ErrProjectNotFound
		}
		if _, err := tx.exec(ctx, `DELETE FROM signing_keys WHERE project_id = ? AND retires_at < ?`, key.ProjectID, unix(key.CreatedAt)); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE signing_keys SET retires_at = ? WHERE project_id = ? AND retires_at IS NULL`, unix(retireAt), key.ProjectID); err != nil {
			return err
		}
		return insertSigningKey(ctx, tx, key, string(jwk))
	})
}

func (db *DB) SealedValues(ctx context.Context, column auth.SealedColumn, after string, limit int) ([]auth.SealedValue, error) {
	c, err := sealedcolumn.Lookup(column)
	if err != nil {
		return nil, err
	}
	rows, err := db.read.query(ctx, fmt.Sprintf(`SELECT %s, %s, %s, %s FROM %s WHERE %s > ? AND %s IS NOT NULL ORDER BY %s LIMIT ?`,
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
	err = db.read.queryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s IS NOT NULL`, c.Table, c.Value)).Scan(&n)
	return n, err
}

func (db *DB) ReplaceSealedValues(ctx context.Context, column auth.SealedColumn, rs []auth.SealedReplacement) (int, error) {
	c, err := sealedcolumn.Lookup(column)
	if err != nil {
		return 0, err
	}
	q := fmt.Sprintf(`UPDATE %s SET %s = ? WHERE %s = ? AND %s = ?`, c.Table, c.Value, c.Key, c.Value)
	var changed int
	err = db.tx(ctx, func(tx *txn) error {
		changed = 0
		for _, r := range rs {
			res, err := tx.exec(ctx, q, r.New, r.Row, r.Old)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			changed += int(n)
		}
		return nil
	})
	return changed, err
}

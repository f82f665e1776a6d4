package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"
)

// NewSchema creates an empty schema, named prefix and 16 random hex digits, in the database of
// connString (a postgres:// URL). It returns that URL with search_path naming the schema, which
// is what --db takes to keep a store there (pgx passes it to the server as a startup parameter),
// and a function that drops the schema with everything in it. Tests and the benchmark use it to
// keep runs on one database apart.
func NewSchema(ctx context.Context, connString, prefix string) (schemaURL string, drop func(context.Context) error, err error) {
	u, err := url.Parse(connString)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("postgres: a schema's search_path goes in the query of a postgres:// URL; this connection string is not one")
	}
	suffix := make([]byte, 8)
	rand.Read(suffix)
	schema := pgx.Identifier{prefix + hex.EncodeToString(suffix)}
	exec := func(ctx context.Context, stmt string) error {
		conn, err := pgx.Connect(ctx, connString)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, stmt)
		return err
	}
	if err := exec(ctx, `CREATE SCHEMA `+schema.Sanitize()); err != nil {
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema[0])
	u.RawQuery = q.Encode()
	return u.String(), func(ctx context.Context) error { return exec(ctx, `DROP SCHEMA `+schema.Sanitize()+` CASCADE`) }, nil
}

// Footprint reports the bytes the tables of the store's schema take (indexes and TOAST
// included) and how many members it holds, for a benchmark's bytes-per-member figure.
func (db *DB) Footprint(ctx context.Context) (bytes, members int64, err error) {
	if err := db.pool.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = current_schema()`).Scan(&bytes); err != nil {
		return 0, 0, err
	}
	err = db.pool.QueryRow(ctx, `SELECT count(*) FROM members`).Scan(&members)
	return bytes, members, err
}

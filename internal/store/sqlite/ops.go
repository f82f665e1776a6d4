package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
)

// PoolStats reports the two connection pools, for metrics: the write pool (one connection, so
// its wait count is the queue of writers) and the read pool.
func (db *DB) PoolStats() map[string]sql.DBStats {
	return map[string]sql.DBStats{
		"sqlite_write": db.write.db.Stats(),
		"sqlite_read":  db.read.db.Stats(),
	}
}

// Probe opens the database file afresh, read-only, and reads its schema version. The pooled
// connections cannot tell: they hold the file open, so a file that was deleted, moved away or
// made unreadable stays readable to them (and a write would land in a file nobody will open
// again), while a fresh open fails. A read-only connection creates nothing and takes no write
// lock, so probing never competes with the server's writer.
func (db *DB) Probe(ctx context.Context) error {
	c, err := sql.Open("sqlite", readOnlyDSN(db.path))
	if err != nil {
		return err
	}
	defer c.Close()
	var v int
	if err := c.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return fmt.Errorf("open %s: %w", db.path, err)
	}
	return nil
}

// readOnlyDSN opens path read-only: it never creates the file, and never writes it (not even
// the checkpoint SQLite runs when a connection closes).
func readOnlyDSN(path string) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro&_pragma=busy_timeout(10000)"
}

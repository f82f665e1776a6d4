package postgres

import (
	"context"
	"database/sql"
)

// PoolStats reports the connection pool in database/sql's terms, for metrics: pgxpool's
// acquired connections are in use, its acquires that found no idle connection and had to wait
// are the wait count, and the time those waited is the wait duration.
func (db *DB) PoolStats() map[string]sql.DBStats {
	s := db.pool.Stat()
	return map[string]sql.DBStats{
		"postgres": {
			MaxOpenConnections: int(s.MaxConns()),
			OpenConnections:    int(s.TotalConns()),
			InUse:              int(s.AcquiredConns()),
			Idle:               int(s.IdleConns()),
			WaitCount:          s.EmptyAcquireCount(),
			WaitDuration:       s.EmptyAcquireWaitTime(),
			MaxIdleTimeClosed:  s.MaxIdleDestroyCount(),
			MaxLifetimeClosed:  s.MaxLifetimeDestroyCount(),
		},
	}
}

// Probe checks that the database answers a round trip on a pooled connection. A broken
// connection fails it and is dropped, so the next probe after an outage dials afresh.
func (db *DB) Probe(ctx context.Context) error { return db.pool.Ping(ctx) }

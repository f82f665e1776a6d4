package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// Checkpoints off the write path.
//
// In WAL mode a commit appends pages to the WAL; a checkpoint copies them back into the database
// file and syncs it. By default SQLite checkpoints inside the commit that takes the WAL past 1000
// pages, so one write in a few hundred copies megabytes and syncs the database file while every
// other write waits behind it: a stall of tens of milliseconds, the whole of a latency p99. Here
// the write connection checkpoints only as a safety net (walSafetyPages), and a connection of its
// own checkpoints in the background: PASSIVE, so it never waits for, or blocks, the writer or
// the readers. Durability does not move: a commit is durable once its WAL frames are synced, as
// before; a checkpoint only moves committed pages from one synced file to the other.

// walSafetyPages is the write connection's own checkpoint threshold (SQLite's
// wal_autocheckpoint): reached only if the background checkpointer falls far behind.
const walSafetyPages = 20000

// checkpointEvery is the most often the background checkpointer runs, while there are commits.
const checkpointEvery = 100 * time.Millisecond

// checkpointer runs PASSIVE checkpoints on a connection of its own after commits.
type checkpointer struct {
	db      *sql.DB
	wake    chan struct{}
	quit    chan struct{}
	stopped chan struct{}
}

func newCheckpointer(db *sql.DB) *checkpointer {
	c := &checkpointer{db: db, wake: make(chan struct{}, 1), quit: make(chan struct{}), stopped: make(chan struct{})}
	go c.run()
	return c
}

// committed tells the checkpointer that the WAL grew. It never blocks.
func (c *checkpointer) committed() {
	if c == nil {
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.stopped)
	for {
		select {
		case <-c.quit:
			return
		case <-c.wake:
		}
		// A failed checkpoint (the disk is full, say) is retried on the next wake; the writer's
		// safety net and the checkpoint at Close remain.
		_, _ = c.db.ExecContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`)
		select {
		case <-c.quit:
			return
		case <-time.After(checkpointEvery):
		}
	}
}

func (c *checkpointer) stop() {
	if c == nil {
		return
	}
	close(c.quit)
	<-c.stopped
	c.db.Close()
}

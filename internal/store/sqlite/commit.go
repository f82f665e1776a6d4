package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/sparekey/sparekey/internal/auth"
)

// Group commit.
//
// SQLite has one writer, and with synchronous=FULL every commit waits for an fsync of the WAL.
// Committed one by one, concurrent writes queue for the write connection and each pays a whole
// transaction: BEGIN IMMEDIATE (the WAL write lock), its statements, and a commit that writes
// every page it dirtied and syncs. Most of that cost is per transaction, not per write: two
// events appended to the same leaf page write that page once if they commit together.
//
// So the store's write transactions go through one goroutine, the committer. It takes the
// first waiting transaction and, without waiting for more, every other one already queued
// (up to maxGroup), and runs them in one SQLite transaction, each inside a SAVEPOINT of its own:
// a transaction that refuses (returns an error) is rolled back to its savepoint and leaves no
// trace, exactly as if it had run alone. One COMMIT then makes the group durable, and only then
// is each caller answered. Nothing is weakened:
//
//   - durability: a caller hears "done" only after the COMMIT, with synchronous=FULL, returned;
//   - atomicity: each transaction's writes stand or fall together (its savepoint), and a group
//     commits whole or not at all;
//   - isolation: the group's transactions run one after another on the one connection, so each
//     sees what the earlier ones wrote, as with one transaction after another. Conditional
//     updates (a code is spent only if still unused) keep their meaning.
//
// Under no load a group is one transaction, run at once: grouping adds no wait, only the hand-off
// to the committer. Under load, the transactions that queued while one group was committing form
// the next: the fsync is shared instead of queued for.
//
// A transaction that fails in a way SQLite may answer by rolling back the whole transaction (any
// error that is not a domain refusal, or a panic) is reported to its caller alone; the others of
// its group are run again, each in a transaction of its own. Store functions may run more than
// once (auth.Store says so), so running them again is safe.

// maxGroup bounds a group, and so the wait of a group's first transaction for its last.
const maxGroup = 32

// errClosed answers a write to a closed store.
var errClosed = errors.New("sqlite: the database is closed")

// writeJob is one store transaction waiting for the committer.
type writeJob struct {
	ctx  context.Context
	fn   func(*txn) error
	err  error
	pnc  any // a panic of fn, raised again in the caller's goroutine
	done chan struct{}
}

// committer owns the write pool's connection for the store's transactions.
type committer struct {
	pool     *pool
	onCommit func() // after each commit that wrote something
	jobs     chan *writeJob
	quit     chan struct{}
	stopped  chan struct{}
	stopOne  sync.Once
	group    []*writeJob
}

func newCommitter(p *pool, onCommit func()) *committer {
	c := &committer{
		pool:     p,
		onCommit: onCommit,
		jobs:     make(chan *writeJob, 4*maxGroup),
		quit:     make(chan struct{}),
		stopped:  make(chan struct{}),
		group:    make([]*writeJob, 0, maxGroup),
	}
	go c.run()
	return c
}

// stop runs the transactions already queued and ends the committer.
func (c *committer) stop() {
	c.stopOne.Do(func() { close(c.quit) })
	<-c.stopped
}

// tx runs fn in a write transaction and reports its outcome once it is durable. fn runs on the
// committer's goroutine; its statements must go through the txn it is given.
func (c *committer) tx(ctx context.Context, fn func(*txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j := &writeJob{ctx: ctx, fn: fn, done: make(chan struct{})}
	select {
	case c.jobs <- j:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.quit:
		return errClosed
	}
	select {
	case <-j.done:
	case <-c.stopped:
		select {
		case <-j.done:
		default:
			return errClosed // queued after the committer's last look
		}
	}
	if j.pnc != nil {
		panic(j.pnc)
	}
	return j.err
}

func (c *committer) run() {
	defer close(c.stopped)
	for {
		select {
		case j := <-c.jobs:
			c.runGroup(c.collect(j))
		case <-c.quit:
			for {
				select {
				case j := <-c.jobs:
					c.runGroup(c.collect(j))
				default:
					return
				}
			}
		}
	}
}

// collect makes a group of first and the jobs queued behind it, without waiting for more.
func (c *committer) collect(first *writeJob) []*writeJob {
	g := append(c.group[:0], first)
	for len(g) < maxGroup {
		select {
		case j := <-c.jobs:
			g = append(g, j)
		default:
			return g
		}
	}
	return g
}

func (j *writeJob) finish(err error) {
	j.err = err
	close(j.done)
}

// runGroup runs a group in one transaction (a group of one without savepoints) and answers
// every job of it.
func (c *committer) runGroup(g []*writeJob) {
	live := g[:0]
	for _, j := range g {
		if err := j.ctx.Err(); err != nil { // its caller gave up before it started
			j.finish(err)
			continue
		}
		live = append(live, j)
	}
	switch len(live) {
	case 0:
		return
	case 1:
		c.runAlone(live[0])
		return
	}

	t, err := c.begin()
	if err != nil {
		for _, j := range live {
			j.finish(err)
		}
		return
	}
	var refused []error // per job: its refusal, or nil when it is to commit
	for i, j := range live {
		if _, err := t.exec(context.Background(), `SAVEPOINT grouped`); err != nil {
			c.abandon(t, live[:i], live[i:], nil)
			return
		}
		err, pnc := call(j, t)
		if pnc != nil || (err != nil && !isRefusal(err)) {
			j.pnc = pnc
			c.abandon(t, live[:i], live[i+1:], func() { j.finish(err) })
			return
		}
		if err != nil {
			if _, rerr := t.exec(context.Background(), `ROLLBACK TO grouped`); rerr != nil {
				c.abandon(t, live[:i], live[i+1:], func() { j.finish(err) })
				return
			}
		}
		if _, rerr := t.exec(context.Background(), `RELEASE grouped`); rerr != nil {
			c.abandon(t, live[:i], live[i+1:], func() {
				if err != nil {
					j.finish(err)
				} else {
					c.runAlone(j)
				}
			})
			return
		}
		refused = append(refused, err)
	}
	err = t.tx.Commit()
	c.onCommit()
	c.prepareMissed(t)
	for i, j := range live {
		if refused[i] != nil {
			j.finish(refused[i])
		} else {
			j.finish(err)
		}
	}
}

// abandon rolls back a group's transaction after a fault, answers the faulty job (answer), and
// runs the group's other jobs again, each alone: those before it (ran) and those after (rest).
func (c *committer) abandon(t *txn, ran, rest []*writeJob, answer func()) {
	_ = t.tx.Rollback()
	c.prepareMissed(t)
	if answer != nil {
		answer()
	}
	for _, j := range ran {
		c.runAlone(j)
	}
	for _, j := range rest {
		c.runAlone(j)
	}
}

// runAlone runs one job in a transaction of its own.
func (c *committer) runAlone(j *writeJob) {
	if err := j.ctx.Err(); err != nil {
		j.finish(err)
		return
	}
	t, err := c.begin()
	if err != nil {
		j.finish(err)
		return
	}
	err, pnc := call(j, t)
	if pnc != nil || err != nil {
		_ = t.tx.Rollback()
	} else {
		err = t.tx.Commit()
		c.onCommit()
	}
	c.prepareMissed(t)
	j.pnc = pnc
	j.finish(err)
}

// begin starts a transaction (BEGIN IMMEDIATE: the write pool's DSN sets _txlock). Its context,
// and that of every statement in it, is never cancelled: SQLite answers an interrupted write
// statement by rolling back the whole transaction, which in a group would undo the other
// callers' work, and then run the rest of the group's statements outside any transaction. A
// caller that gives up is dropped before its turn (runGroup), not in the middle of it.
func (c *committer) begin() (*txn, error) {
	tx, err := c.pool.db.BeginTx(context.Background(), nil)
	if err != nil {
		return nil, err
	}
	return &txn{tx: tx, pool: c.pool}, nil
}

// prepareMissed prepares the statements a transaction ran unprepared, now that the connection
// is free again.
func (c *committer) prepareMissed(t *txn) {
	for _, q := range t.missed {
		_, _ = c.pool.stmt(context.Background(), q) // best effort: it runs unprepared otherwise
	}
	t.missed = nil
}

// call runs a job's function, catching a panic so that the committer survives it and the
// caller's goroutine can raise it again.
func call(j *writeJob, t *txn) (err error, pnc any) {
	defer func() {
		if p := recover(); p != nil {
			pnc = p
			if pnc == nil {
				pnc = fmt.Errorf("sqlite: a store transaction panicked")
			}
		}
	}()
	return j.fn(t), nil
}

// isRefusal reports a domain error: a store function refusing on the rules, with the
// transaction intact. Anything else may have been a fault SQLite answered by rolling back.
func isRefusal(err error) bool {
	var e *auth.Error
	return errors.As(err, &e)
}

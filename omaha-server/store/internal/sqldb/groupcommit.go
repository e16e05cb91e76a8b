package sqldb

import (
	"context"
	"database/sql"
)

// Group commit, for a database with one writer connection (SQLite). Check-ins are the bulk
// of all writes and each commit costs a WAL write, so one writer goroutine takes the
// check-ins waiting at that moment (up to maxBatch) and runs them in one transaction. Each
// caller returns only after the batch's COMMIT, with the commit's error if it failed, so a
// check-in is still all-or-nothing and durable when Checkin returns. A check-in that fails
// may have written part of its rows: the batch is rolled back and its check-ins run again,
// each in its own transaction (their decisions only compute, so running one twice is
// safe). Failures are rare (a check-in refuses bad input before it writes), so the common
// batch pays no savepoint per check-in. Under light load a batch holds one check-in and
// this is the plain path.

// maxBatch bounds how many check-ins share one transaction. Small on purpose: all of a
// batch's callers are released at its commit, and if the batch held every check-in in
// flight, the writer would idle until they had answered their hosts and come back with the
// next requests, and then take them all again (a convoy). With a few per batch the rest
// stay queued and the writer goes on with them. Measured with 16 concurrent hosts on 2
// cores: 8 per batch 5,700 check-ins/s, 4 about the same, 128 (one convoy) 4,800.
const maxBatch = 8

type checkinReq struct {
	ctx  context.Context
	run  func(ctx context.Context, tx *sql.Tx) ([]CountDelta, error)
	done chan error
}

// startGroupCommit starts the writer goroutine; stopGroupCommit ends it.
func (db *DB) startGroupCommit() {
	db.batches = make(chan *checkinReq, maxBatch)
	db.writerDone = make(chan struct{})
	go db.writer()
}

func (db *DB) stopGroupCommit() {
	if db.batches == nil {
		return
	}
	close(db.batches)
	<-db.writerDone
}

// groupRun runs fn as one member of the writer's next batch (a check-in, plain or
// counted: the single writer is what serialises a group's grants on SQLite).
func (db *DB) groupRun(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) ([]CountDelta, error)) error {
	r := &checkinReq{ctx: ctx, run: fn, done: make(chan error, 1)}
	select {
	case db.batches <- r:
	case <-ctx.Done():
		return db.wrap("check-in", ctx.Err())
	}
	// Once queued the request is always answered, after its batch committed or failed.
	return <-r.done
}

func (db *DB) writer() {
	defer close(db.writerDone)
	batch := make([]*checkinReq, 0, maxBatch)
	for r := range db.batches {
		batch = append(batch[:0], r)
	fill:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-db.batches:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		db.runBatch(batch)
	}
}

func (db *DB) runBatch(batch []*checkinReq) {
	// The batch's transaction must not end with any one caller's context.
	tx, err := db.w.BeginTx(context.WithoutCancel(batch[0].ctx), nil)
	if err != nil {
		for _, r := range batch {
			r.done <- db.wrap("check-in", err)
		}
		return
	}
	errs := make([]error, len(batch))
	// The batch's changes to the instance counts are summed and written once, before the
	// commit: check-ins moving hosts between the same keys write each key once.
	counts := map[countKey]int64{}
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = db.wrap("check-in", err)
			continue
		}
		ds, err := r.run(context.WithoutCancel(r.ctx), tx)
		if err != nil {
			tx.Rollback()
			db.runEach(batch)
			return
		}
		for _, d := range ds {
			counts[d.key] += d.Delta
		}
	}
	if err := db.applyCounts(context.WithoutCancel(batch[0].ctx), tx, sortedDeltas(counts)); err != nil {
		tx.Rollback()
		db.runEach(batch)
		return
	}
	cerr := tx.Commit()
	for i, r := range batch {
		if errs[i] == nil && cerr != nil {
			errs[i] = db.wrap("check-in: commit", cerr)
		}
		r.done <- errs[i]
	}
}

// runEach runs each check-in of a batch that failed in its own transaction.
func (db *DB) runEach(batch []*checkinReq) {
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- db.wrap("check-in", err)
			continue
		}
		ctx := context.WithoutCancel(r.ctx)
		tx, err := db.w.BeginTx(ctx, nil)
		if err != nil {
			r.done <- db.wrap("check-in", err)
			continue
		}
		counts, err := r.run(ctx, tx)
		if err == nil {
			err = db.applyCounts(ctx, tx, counts)
		}
		if err != nil {
			tx.Rollback()
			r.done <- err
			continue
		}
		r.done <- db.wrap("check-in: commit", tx.Commit())
	}
}

package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"time"
)

// Checkpoints. SQLite's automatic checkpoint copies the WAL back into the database file
// inside the commit that crosses its threshold, on the single writer connection, so every
// few hundred check-ins one batch waits for it. Instead a checkpointer copies the WAL from
// its own connection every checkpointEvery (PASSIVE: it never blocks the writer or a
// reader) and the writer's automatic checkpoint stays as a backstop at walBackstopPages:
// when the WAL reaches it, the writer's checkpoint finds most frames already copied and
// catches up, and the next write starts the WAL from the beginning again.
const (
	checkpointEvery  = 250 * time.Millisecond
	walBackstopPages = 16384 // 64 MiB of 4 KiB pages
)

// checkpointer runs PASSIVE checkpoints on c until ctx ends, keeping the last one's error
// in last (a failure costs nothing but time: the backstop still bounds the WAL, and the
// next tick tries again); it closes done when it stops.
func checkpointer(ctx context.Context, c *sql.DB, last *atomic.Pointer[error], done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var busy, frames, copied int
		err := c.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			err = fmt.Errorf("sqlite: background checkpoint: %w", err)
			last.Store(&err)
		} else {
			last.Store(nil)
		}
	}
}

package rebootlock_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/rebootlock"
)

// BenchmarkLockUnlock measures one uncontended TryLock+Unlock cycle (a read, a lease
// grant, the guarded transaction, the release) against a baseline measured in the same
// run on the same etcd: a plain Put followed by a Delete. It reports the ratio.
func BenchmarkLockUnlock(b *testing.B) {
	c := startCluster(b, 1, nil)
	cli := c.client(b, rebootlock.EtcdConfig{})
	s, err := rebootlock.New(cli, "bench", rebootlock.Options{Prefix: "/bench", LivenessTTL: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()

	start := time.Now()
	for range b.N {
		if _, err := cli.Put(ctx, "/bench/baseline", "x"); err != nil {
			b.Fatal(err)
		}
		if _, err := cli.Delete(ctx, "/bench/baseline"); err != nil {
			b.Fatal(err)
		}
	}
	baseline := time.Since(start)

	b.ResetTimer()
	start = time.Now()
	for range b.N {
		if err := s.TryLock(ctx, rebootlock.Holder{ID: "h"}); err != nil {
			b.Fatal(err)
		}
		if err := s.Unlock(ctx, "h"); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(time.Since(start))/float64(baseline), "x-put-delete")
}

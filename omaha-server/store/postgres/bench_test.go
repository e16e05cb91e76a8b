package postgres_test

import (
	"testing"

	"github.com/switchyard-os/switchyard/omaha-server/store/storetest"
)

// BenchmarkCheckinCounts: check-ins per second with and without the instance counts,
// measured in the same run (see storetest.BenchCheckins).
func BenchmarkCheckinCounts(b *testing.B) {
	st := open(b, cluster.DB(b))
	storetest.BenchCheckins(b, st, st, 10_000, 20_000, 16)
}

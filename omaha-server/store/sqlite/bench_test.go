package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
	"github.com/switchyard-os/switchyard/omaha-server/store/storetest"
)

// BenchmarkCheckinCounts: check-ins per second with and without the instance counts,
// measured in the same run (see storetest.BenchCheckins).
func BenchmarkCheckinCounts(b *testing.B) {
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), sqlite.FileName), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	storetest.BenchCheckins(b, st, st, 10_000, 20_000, 16)
}

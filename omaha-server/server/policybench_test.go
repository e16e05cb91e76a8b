package server_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

// policyRun serves the benchmark fleet from a fresh SQLite store whose group has policy p
// and returns the checks per second.
func policyRun(b *testing.B, p policy.Policy) float64 {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), sqlite.FileName), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s, err := server.New(context.Background(), server.Config{DataDir: b.TempDir()}, st, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, err := range []error{
		second(st.CreateApp(ctx, store.App{ID: omaha.FlatcarAppID, Name: "Flatcar"})),
		second(st.CreateRelease(ctx, store.Release{AppID: store.FlatcarAppID, Version: benchTo, Board: "amd64-usr",
			FileName: "flatcar_production_update.gz", Size: 1000, SHA256: benchSHA256, URL: "https://mirror.example/flatcar_production_update.gz"})),
		second(st.CreateChannel(ctx, store.Channel{AppID: store.FlatcarAppID, Name: "stable"})),
		second(st.SetChannelRelease(ctx, store.FlatcarAppID, "stable", "amd64-usr", benchTo)),
		second(st.CreateGroup(ctx, store.Group{AppID: store.FlatcarAppID, Name: "stable", Track: "stable", Channel: "stable",
			UpdatesEnabled: true, Policy: p})),
	} {
		if err != nil {
			b.Fatal(err)
		}
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	return benchRun(b, srv.URL).ChecksPerSecond
}

// BenchmarkPolicySQLite measures update checks per second with every policy active
// (percentage, caps per period and in flight, timeout, a window that is always open, an
// automatic halt, a floor and a blocked version) against the same fleet with no policy,
// both in this run. Target: the ratio at least 0.8.
func BenchmarkPolicySQLite(b *testing.B) {
	half := 50
	all := policy.Policy{
		Percent: &half, MaxPerPeriod: 500, Period: policy.Duration(time.Hour), MaxInFlight: 200,
		Timeout: policy.Duration(time.Hour), Windows: []string{"Mon-Sun 00:00 24h UTC"},
		HaltFailures: 1000, HaltOf: 1000, Floors: []string{"1.0.0"}, Blocked: []string{"2.0.0"},
	}
	if err := all.Validate(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	plain := policyRun(b, policy.Policy{})
	counted := policyRun(b, all)
	b.StopTimer()
	b.ReportMetric(plain, "plain-checks/s")
	b.ReportMetric(counted, "policy-checks/s")
	b.ReportMetric(counted/plain, "policy-ratio-to-plain")
}

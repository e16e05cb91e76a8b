package server_test

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/postgres"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
	"github.com/switchyard-os/switchyard/omaha/loadgen"
)

// Fleet shape of the benchmark: benchHosts distinct simulated Flatcar hosts, each starting
// on benchFrom while the stable channel offers benchTo, so the run mixes first check-ins
// (instance inserts), offers, the 13/1 → 14/1 → 3/1 → ping → 3/2 event sequence and
// up-to-date checks. Every host is visited at least twice.
const (
	benchHosts       = 100_000
	benchRequests    = 2 * benchHosts
	benchConcurrency = 16
	benchFrom        = "4081.2.0"
	benchTo          = "4081.3.0"
	benchSHA256      = "2c8900295658d842458b04e696d88964b14b039c53fc5a1d6e3560aa4c85ff2f"
)

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 2 * benchConcurrency, MaxIdleConnsPerHost: 2 * benchConcurrency}}
}

// peakRSS resets (when reset) or reads the process's peak resident set size in MiB.
func peakRSS(b *testing.B, reset bool) float64 {
	if reset {
		// "5" resets VmHWM to the current RSS (Linux ≥ 4.0).
		os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
		return 0
	}
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Logf("peak RSS unavailable: %v", err)
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func benchRun(b *testing.B, url string) *loadgen.Report {
	rep, err := loadgen.Run(context.Background(), loadgen.Config{
		BaseURL: url, Client: benchClient(), Hosts: benchHosts, Concurrency: benchConcurrency,
		Requests: max(b.N, benchRequests), Version: benchFrom, FailPercent: 2,
	})
	if err != nil {
		b.Fatal(err)
	}
	if rep.Errors != 0 {
		b.Fatalf("%d errors, e.g. %v", rep.Errors, rep.ErrorSamples)
	}
	b.Logf("%s", rep)
	return rep
}

// baseline measures loadgen.Baseline (Omaha parsing and answering only, no state) under the
// same load: the reference the server's numbers are reported against.
func baseline(b *testing.B) *loadgen.Report {
	sum, _ := hex.DecodeString(benchSHA256)
	srv := httptest.NewServer(&loadgen.Baseline{Offer: &omaha.Offer{Version: benchTo, URLs: []string{"https://mirror.example/"},
		Package: omaha.Package{Name: "flatcar_production_update.gz", Size: 1000, HashSHA256: benchSHA256}, SHA256: sum}})
	defer srv.Close()
	return benchRun(b, srv.URL)
}

func benchServer(b *testing.B, st store.Store) {
	ctx := context.Background()
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
		second(st.CreateGroup(ctx, store.Group{AppID: store.FlatcarAppID, Name: "stable", Track: "stable", Channel: "stable", UpdatesEnabled: true})),
	} {
		if err != nil {
			b.Fatal(err)
		}
	}
	// The baseline runs before and after the server and the ratios are against their
	// mean: a shared machine's speed drifts (on the development VM it halved for minutes
	// at a time), and a drift during the run then moves both sides alike.
	before := baseline(b)
	srv := httptest.NewServer(s)
	defer srv.Close()
	peakRSS(b, true)
	b.ResetTimer()
	rep := benchRun(b, srv.URL)
	b.StopTimer()
	rss := peakRSS(b, false)
	after := baseline(b)
	base := &loadgen.Report{ChecksPerSecond: (before.ChecksPerSecond + after.ChecksPerSecond) / 2, P99: (before.P99 + after.P99) / 2}
	n, err := st.ListInstances(ctx, store.InstanceFilter{Limit: benchHosts + 1})
	// Workers share the request budget, so on a busy machine some hosts of a slower worker
	// may never get their turn: the number of distinct hosts seen is reported, and may not
	// exceed the fleet.
	if err != nil || len(n) == 0 || len(n) > benchHosts {
		b.Fatalf("%d instances recorded (%v), want at most %d", len(n), err, benchHosts)
	}
	b.ReportMetric(float64(len(n)), "hosts-recorded")
	b.ReportMetric(rep.ChecksPerSecond, "checks/s")
	b.ReportMetric(rep.RequestsPerSecond, "requests/s")
	b.ReportMetric(float64(rep.P50)/float64(time.Millisecond), "p50-ms")
	b.ReportMetric(float64(rep.P99)/float64(time.Millisecond), "p99-ms")
	b.ReportMetric(rss, "peak-RSS-MiB")
	b.ReportMetric(base.ChecksPerSecond, "baseline-checks/s")
	b.ReportMetric(rep.ChecksPerSecond/base.ChecksPerSecond, "checks-ratio-to-baseline")
	b.ReportMetric(float64(rep.P99)/float64(base.P99), "p99-ratio-to-baseline")
}

func second[T any](_ T, err error) error { return err }

// BenchmarkServerSQLite runs the fleet against the server on the embedded SQLite store.
// Targets on a 2-core machine: ≥ 5,000 checks/s, p99 < 20 ms, peak RSS < 256 MiB.
func BenchmarkServerSQLite(b *testing.B) {
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), sqlite.FileName), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	benchServer(b, st)
}

// BenchmarkServerPostgres runs the fleet against the server on PostgreSQL (a throwaway
// pgtest cluster: fsync off, so this measures the server and not the disk). Target:
// ≥ 3,000 checks/s.
func BenchmarkServerPostgres(b *testing.B) {
	st, err := postgres.Open(context.Background(), cluster.DB(b), postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	benchServer(b, st)
}

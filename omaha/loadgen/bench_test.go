package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/switchyard-os/switchyard/omaha"
)

// BenchmarkBaseline measures the Baseline handler (parse, validate, answer) under loadgen and
// reports its throughput as a ratio of a handler that answers fixed bytes without reading the
// request, measured in the same run: the cost of the protocol work alone.
func BenchmarkBaseline(b *testing.B) {
	fixed := []byte(`<?xml version="1.0" encoding="UTF-8"?><response protocol="3.0" server="fixed"><daystart elapsed_seconds="0"></daystart><app appid="` +
		omaha.FlatcarAppID + `" status="ok"><ping status="ok"></ping><updatecheck status="noupdate"></updatecheck><event status="ok"></event></app></response>`)
	static := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/xml")
		w.Write(fixed)
	}))
	defer static.Close()
	full := httptest.NewServer(&Baseline{})
	defer full.Close()

	run := func(url string, c *http.Client) *Report {
		rep, err := Run(context.Background(), Config{BaseURL: url, Client: c, Hosts: 1000, Concurrency: 4, Requests: max(b.N, 200)})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Errors != 0 {
			b.Fatalf("errors: %v", rep.ErrorSamples)
		}
		return rep
	}
	b.ResetTimer()
	base := run(static.URL, static.Client())
	got := run(full.URL, full.Client())
	b.StopTimer()
	b.ReportMetric(got.ChecksPerSecond, "checks/s")
	b.ReportMetric(got.ChecksPerSecond/base.ChecksPerSecond, "ratio-to-fixed")
	b.ReportMetric(float64(got.P99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(got.P99)/float64(base.P99), "p99-ratio-to-fixed")
}

package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/switchyard-os/switchyard/update-engine/engine"
	"github.com/switchyard-os/switchyard/update-engine/metrics"
)

// TestNeedRebootStatusIsTheEngines: reboot_pending keys on the engine's status name.
func TestNeedRebootStatusIsTheEngines(t *testing.T) {
	if metrics.NeedRebootStatus != string(engine.StatusUpdatedNeedReboot) {
		t.Fatalf("NeedRebootStatus %q, engine says %q", metrics.NeedRebootStatus, engine.StatusUpdatedNeedReboot)
	}
}

// TestOSInfoAndRebootPending scrapes the gauges over HTTP as Prometheus would.
func TestOSInfoAndRebootPending(t *testing.T) {
	reg := prometheus.NewRegistry()
	var statuses []string
	for _, s := range engine.Statuses() {
		statuses = append(statuses, string(s))
	}
	m, err := metrics.New(reg, statuses)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	scrape := func() string {
		t.Helper()
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	steps := []struct {
		name   string
		do     func()
		want   []string
		absent []string
	}{
		{"start", func() {}, []string{"switchyard_update_engine_reboot_pending 0\n"}, []string{"switchyard_update_engine_os_info{"}},
		{"os info", func() { m.OSInfo("4081.2.0", "amd64-usr", "stable") },
			[]string{`switchyard_update_engine_os_info{board="amd64-usr",group="stable",version="4081.2.0"} 1` + "\n"}, nil},
		{"os info replaced", func() { m.OSInfo("4081.3.0", "amd64-usr", "beta") },
			[]string{`switchyard_update_engine_os_info{board="amd64-usr",group="beta",version="4081.3.0"} 1` + "\n"},
			[]string{`version="4081.2.0"`}},
		{"downloading", func() { m.SetStatus(string(engine.StatusDownloading)) }, []string{"switchyard_update_engine_reboot_pending 0\n"}, nil},
		{"need reboot", func() { m.SetStatus(string(engine.StatusUpdatedNeedReboot)) }, []string{"switchyard_update_engine_reboot_pending 1\n"}, nil},
		{"idle again", func() { m.SetStatus(string(engine.StatusIdle)) }, []string{"switchyard_update_engine_reboot_pending 0\n"}, nil},
	}
	for _, s := range steps {
		s.do()
		out := scrape()
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: /metrics lacks %q", s.name, w)
			}
		}
		for _, a := range s.absent {
			if strings.Contains(out, a) {
				t.Errorf("%s: /metrics has %q", s.name, a)
			}
		}
	}
}

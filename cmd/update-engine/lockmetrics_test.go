package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/switchyard-os/switchyard/rebootlock"
	"github.com/switchyard-os/switchyard/rebootlock/strategy"
	"github.com/switchyard-os/switchyard/update-engine/config"
)

// TestEtcdLockExportsHolders: with REBOOT_STRATEGY=etcd-lock the daemon's registry carries
// the lock group's gauges (what a FleetLock server exports for FleetLock fleets), and a
// read of the group (as serve's monitor does every lockMonitorInterval) sets them.
func TestEtcdLockExportsHolders(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded etcd")
	}
	endpoint := startEtcd(t)
	cfg := config.Default()
	cfg.RebootStrategy, cfg.EtcdEndpoints, cfg.LockGroup, cfg.RebootCommand = strategy.EtcdLock, []string{endpoint}, "workers", []string{"true"}
	d := &daemon{reg: prometheus.NewRegistry()}
	defer d.close()
	log := slog.New(slog.DiscardHandler)
	if _, err := rebooter(cfg, "self", "boot", http.DefaultClient, log, d); err != nil {
		t.Fatal(err)
	}
	if d.lock == nil {
		t.Fatal("etcd-lock wired no lock for the monitor")
	}

	// Another host of the group holds a slot.
	cli, err := rebootlock.NewClient(rebootlock.EtcdConfig{Endpoints: []string{endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	other, err := rebootlock.New(cli, "workers", rebootlock.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.TryLock(t.Context(), rebootlock.Holder{ID: "other", Hostname: "other"}); err != nil {
		t.Fatal(err)
	}

	if _, err := d.lock.Status(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	for _, want := range []string{
		`switchyard_rebootlock_holders{group="workers"} 1`,
		`switchyard_rebootlock_stale_holders{group="workers"} 0`,
		`switchyard_rebootlock_max_holders{group="workers"} 1`,
	} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

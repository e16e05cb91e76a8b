package rebootlock_test

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-os/switchyard/rebootlock"
	"github.com/switchyard-os/switchyard/rebootlock/fleetlock"
	"github.com/switchyard-os/switchyard/rebootlock/strategy"
	"github.com/switchyard-os/switchyard/rebootlock/window"
)

// The host daemon's use: before the reboot, wait for a window and a slot; after it, keep
// liveness while checking health, then release the slot.
func Example_daemon() {
	ctx := context.Background()
	log := slog.Default()
	cli, err := rebootlock.NewClient(rebootlock.EtcdConfig{
		Endpoints: []string{"https://etcd.example:2379"},
		CAFile:    "/etc/switchyard/etcd-ca.pem",
	})
	if err != nil {
		log.Error("etcd", "err", err)
		return
	}
	defer cli.Close()
	sem, err := rebootlock.New(cli, "default", rebootlock.Options{Logger: log})
	if err != nil {
		log.Error("lock", "err", err)
		return
	}
	defer sem.Close()
	windows, _ := window.Parse("Mon-Fri 02:00 3h Europe/Berlin")
	me := rebootlock.Holder{ID: "0123456789abcdef0123456789abcdef", Hostname: "web-1", FromVersion: "4081.2.0", ToVersion: "4081.2.1"}

	// Before the reboot (update staged):
	c, err := strategy.New(strategy.Config{
		Strategy: strategy.EtcdLock,
		Windows:  windows,
		Lock:     sem.Slot(me),
		Rebooter: strategy.Systemctl(),
		Logger:   log,
	})
	if err != nil {
		log.Error("strategy", "err", err)
		return
	}
	if err := c.Reboot(ctx); err != nil {
		log.Error("reboot", "err", err)
	}

	// After the reboot: show liveness while checking health, then release.
	hctx, healthy := context.WithCancel(ctx)
	go sem.KeepAlive(hctx, me.ID)
	// ... health checks pass, the new partition is marked good ...
	healthy()
	if err := sem.Unlock(ctx, me.ID); err != nil {
		log.Error("unlock", "err", err) // retry later: the slot stays held meanwhile
	}
}

// omaha-server's use: serve FleetLock from etcd and export the lock's metrics.
func Example_server() {
	cli, err := rebootlock.NewClient(rebootlock.EtcdConfig{Endpoints: []string{"http://127.0.0.1:2379"}})
	if err != nil {
		return
	}
	defer cli.Close()
	metrics, err := rebootlock.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/fleetlock/", http.StripPrefix("/fleetlock", fleetlock.NewHandler(cli, rebootlock.Options{Metrics: metrics})))
	// Keep the gauges current for a group the operator cares about.
	sem, _ := rebootlock.New(cli, "default", rebootlock.Options{Metrics: metrics})
	go sem.Monitor(context.Background(), time.Minute)
	_ = http.ListenAndServe("127.0.0.1:8080", mux)
}

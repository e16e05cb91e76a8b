package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"

	"github.com/spf13/pflag"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-os/switchyard/rebootlock"
	"github.com/switchyard-os/switchyard/rebootlock/fleetlock"
)

// fleetLockFlags turn on the FleetLock endpoints.
type fleetLockFlags struct {
	etcd rebootlock.EtcdConfig
	list string
	pre  string
	cfg  fleetlock.Config
}

func (f *fleetLockFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.list, "fleetlock-etcd", "", "etcd endpoints (comma-separated); serve FleetLock's POST /v1/pre-reboot and /v1/steady-state backed by the reboot semaphore")
	fs.StringVar(&f.etcd.CAFile, "fleetlock-etcd-cacert", "", "CA that signs etcd's certificate")
	fs.StringVar(&f.etcd.CertFile, "fleetlock-etcd-cert", "", "client certificate for etcd")
	fs.StringVar(&f.etcd.KeyFile, "fleetlock-etcd-key", "", "client key for etcd")
	fs.StringVar(&f.etcd.Username, "fleetlock-etcd-username", "", "etcd user")
	fs.StringVar(&f.pre, "fleetlock-prefix", "", "etcd key prefix of the reboot semaphores (default: rebootlock's)")
	fs.BoolVar(&f.cfg.ConfiguredGroupsOnly, "fleetlock-configured-groups-only", false, "serve pre-reboot only in groups configured with updatectl lock set-max (others: 400 unknown_group)")
	fs.DurationVar(&f.cfg.HolderTTL, "fleetlock-holder-ttl", fleetlock.DefaultHolderTTL, "a holder of an unconfigured group that sends no steady-state within this loses its slot")
	fs.IntVar(&f.cfg.NewGroupsPerSource, "fleetlock-new-groups-per-source", fleetlock.DefaultNewGroupsPerSource, "empty unconfigured groups one source address may start using per hour")
}

// lazyHandler lets the server be built before a handler that needs the server's registry.
type lazyHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lazyHandler) set(h http.Handler) { l.h.Store(&h) }

func (l *lazyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := l.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, "starting", http.StatusServiceUnavailable)
}

// fleetLock builds the FleetLock handler on the etcd cluster.
func (f *fleetLockFlags) handler(log *slog.Logger, reg prometheus.Registerer) (http.Handler, func() error, error) {
	f.etcd.Endpoints = []string{f.list}
	if pw := os.Getenv("OMAHA_SERVER_FLEETLOCK_ETCD_PASSWORD"); pw != "" {
		f.etcd.Password = pw
	}
	cli, err := rebootlock.NewClient(f.etcd)
	if err != nil {
		return nil, nil, fmt.Errorf("fleetlock etcd: %w", err)
	}
	m, err := rebootlock.NewMetrics(reg)
	if err != nil {
		cli.Close()
		return nil, nil, err
	}
	cfg := f.cfg
	cfg.Options = rebootlock.Options{Prefix: f.pre, Logger: log, Metrics: m}
	h := fleetlock.New(cli, cfg)
	return h, cli.Close, nil
}

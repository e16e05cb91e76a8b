package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/rebootlock"
	"github.com/switchyard-os/switchyard/rebootlock/fleetlock"
	"github.com/switchyard-os/switchyard/rebootlock/strategy"
	"github.com/switchyard-os/switchyard/rebootlock/window"
	"github.com/switchyard-os/switchyard/sdnotify"
	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/payload"
	tufclient "github.com/switchyard-os/switchyard/signing/tuf/client"
	"github.com/switchyard-os/switchyard/update-engine/config"
	"github.com/switchyard-os/switchyard/update-engine/control"
	"github.com/switchyard-os/switchyard/update-engine/disk"
	"github.com/switchyard-os/switchyard/update-engine/engine"
	"github.com/switchyard-os/switchyard/update-engine/health"
	"github.com/switchyard-os/switchyard/update-engine/hook"
	"github.com/switchyard-os/switchyard/update-engine/identity"
	"github.com/switchyard-os/switchyard/update-engine/install"
	"github.com/switchyard-os/switchyard/update-engine/media"
	"github.com/switchyard-os/switchyard/update-engine/metrics"
	"github.com/switchyard-os/switchyard/update-engine/omahaclient"
	"github.com/switchyard-os/switchyard/update-engine/schedule"
	"github.com/switchyard-os/switchyard/update-engine/state"
	"github.com/switchyard-os/switchyard/update-engine/transport"
	"github.com/switchyard-os/switchyard/update-engine/trust"
)

// errUsage marks an error that is the caller's wording: main prints it in one line with a
// hint to run update-engine --help, and exits 2.
var errUsage = usage.ErrUsage

// flags holds the command line.
type flags struct {
	files     []string
	set       []string
	once      bool
	postBoot  bool
	logLevel  string
	logJSON   bool
	printKeys bool
}

type multi []string

func (m *multi) Type() string       { return "string" }
func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// shortcut flags map to configuration keys.
var shortcuts = []struct{ flag, key, help string }{
	{"server", "SERVER", "Omaha endpoint"},
	{"group", "GROUP", "group (track)"},
	{"version", "FLATCAR_RELEASE_VERSION", "the running version"},
	{"board", "FLATCAR_RELEASE_BOARD", "board"},
	{"disk", "DISK", "disk or image file with USR-A and USR-B"},
	{"active-partition", "ACTIVE_PARTITION", "active USR partition label or number (image files)"},
	{"state-dir", "STATE_DIR", "state directory"},
	{"socket", "CONTROL_SOCKET", "control socket"},
	{"metrics-addr", "METRICS_ADDR", "loopback address for Prometheus metrics"},
	{"tuf-url", "TUF_URL", "TUF repository URL"},
	{"tuf-root", "TUF_ROOT", "trusted TUF root.json"},
	{"payload-keys", "PAYLOAD_KEYS", "payload public keys (files or directories, comma-separated)"},
	{"server-ca", "SERVER_CA", "CA bundle for the server"},
	{"reboot-strategy", "REBOOT_STRATEGY", "etcd-lock, fleetlock, reboot or off"},
}

// newRoot returns update-engine's command: the daemon, configured by flags and files.
// run receives the parsed flags.
func newRoot(run func(ctx context.Context, f *flags, short map[string]*string, stdout, stderr io.Writer) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "update-engine [flags]",
		Short: "the host update daemon: check, verify, write the inactive USR partition, flip, reboot, confirm",
		Long: `The host update daemon: it checks an Omaha server for updates, verifies them through TUF and
the payload signature, writes them to the inactive USR partition, flips the GPT, coordinates
the reboot, and confirms (or reports the rollback of) the update after the reboot.
update-engine --version alone prints the build's version; --version VALUE sets the running
version (FLATCAR_RELEASE_VERSION).`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	f := &flags{}
	files := multi{config.ReleaseFile, config.FlatcarConfigFile, config.SwitchyardConfFile}
	var cfgFiles multi
	fs.Var(&cfgFiles, "config", "configuration file (repeatable; replaces the default list: "+files.String()+")")
	var set multi
	fs.Var(&set, "set", "KEY=VALUE configuration override (repeatable; see -keys)")
	fs.BoolVar(&f.once, "once", false, "check once, apply and flip an offered update, stop before the reboot")
	fs.BoolVar(&f.postBoot, "post-boot", false, "run the post-boot work once (health checks, mark good, report 3/2 or the rollback)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&f.logJSON, "log-json", false, "log JSON lines instead of text")
	fs.BoolVar(&f.printKeys, "keys", false, "print the configuration keys and exit")
	short := map[string]*string{}
	for _, s := range shortcuts {
		short[s.key] = fs.String(s.flag, "", s.help+" ("+s.key+")")
	}
	cmd.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
		if f.once && f.postBoot {
			return fmt.Errorf("%w: -once and -post-boot exclude each other", errUsage)
		}
		f.files = files
		if len(cfgFiles) > 0 {
			f.files = cfgFiles
		}
		f.set = set
		return run(ctx, f, short, stdout, stderr)
	})
	return cmd
}

// loadConfig reads the files, then applies -set and the shortcut flags.
func loadConfig(f *flags, short map[string]*string) (config.Config, error) {
	cfg := config.Default()
	if err := cfg.Load(f.files...); err != nil {
		return cfg, err
	}
	for _, kv := range f.set {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return cfg, fmt.Errorf("-set %q: want KEY=VALUE", kv)
		}
		if err := cfg.Set(k, v); err != nil {
			return cfg, err
		}
	}
	keys := make([]string, 0, len(short))
	for k := range short {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v := *short[k]; v != "" {
			if err := cfg.Set(k, v); err != nil {
				return cfg, err
			}
		}
	}
	return cfg, cfg.Validate()
}

func newLogger(f *flags, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if f.logJSON {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return usage.Execute(ctx, newRoot(runDaemon), args, stdout, stderr)
}

// runDaemon runs update-engine as the flags say.
func runDaemon(ctx context.Context, f *flags, short map[string]*string, stdout, stderr io.Writer) error {
	if f.printKeys {
		for _, k := range config.Keys() {
			fmt.Fprintf(stdout, "%-34s %s\n", k.Name, k.Help)
		}
		return nil
	}
	cfg, err := loadConfig(f, short)
	if err != nil {
		return err
	}
	log, err := newLogger(f, stderr)
	if err != nil {
		return err
	}
	if len(cfg.Unknown) > 0 {
		// Flatcar's files carry keys for other tools; a typo shows up here too.
		log.Warn("configuration keys this daemon does not know (see update-engine -keys)", "keys", cfg.Unknown)
	}
	d, err := wire(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer d.close()
	switch {
	case f.once:
		snap, err := d.engine.Once(ctx)
		if errors.Is(err, engine.ErrNeedReboot) {
			fmt.Fprintf(stdout, "update to %s already applied: reboot to finish it\n", snap.NewVersion)
			return nil
		}
		if err != nil {
			if ctx.Err() == nil {
				return fmt.Errorf("update failed (error code %d): %w", uint32(engine.CodeOf(err)), err)
			}
			return err
		}
		if snap.Status == engine.StatusUpdatedNeedReboot {
			fmt.Fprintf(stdout, "updated to %s on %s: reboot needed\n", snap.NewVersion, snap.TargetPartition)
		} else {
			fmt.Fprintln(stdout, "no update available")
		}
		return nil
	case f.postBoot:
		err := d.engine.PostBoot(ctx)
		switch {
		case errors.Is(err, engine.ErrNoPending):
			fmt.Fprintln(stdout, "no update waiting for confirmation")
			return nil
		case errors.Is(err, engine.ErrNotRebooted):
			fmt.Fprintln(stdout, "the applied update waits for a reboot")
			return nil
		case err != nil:
			return err
		}
		snap := d.engine.Snapshot()
		if snap.LastErrorCode == uint32(omaha.ErrorCodeRollback) {
			fmt.Fprintf(stdout, "%s\n", snap.LastError)
			return nil
		}
		fmt.Fprintf(stdout, "update confirmed: %s marked good\n", snap.ActivePartition)
		return nil
	}
	return d.serve(ctx, cfg, log)
}

// daemon holds the wired parts.
type daemon struct {
	engine  *engine.Engine
	reg     *prometheus.Registry
	closers []func()
	// lock is the etcd reboot lock (REBOOT_STRATEGY=etcd-lock), else nil. With metrics on,
	// serve reads it every lockMonitorInterval so its gauges stay current between reboots.
	lock *rebootlock.Semaphore
}

// lockMonitorInterval is how often an etcd-lock daemon with metrics reads its lock group
// (one range read of the group's keys per host).
const lockMonitorInterval = time.Minute

func (d *daemon) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
}

func (d *daemon) serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	notify, err := sdnotify.New(log)
	if err != nil {
		return err
	}
	l, err := control.Listen(cfg.ControlSocket)
	if err != nil {
		return err
	}
	defer os.Remove(cfg.ControlSocket)
	errc := make(chan error, 5) // control, D-Bus, metrics, lock monitor, watchdog
	api := &media.Daemon{Engine: d.engine, Config: media.Config{TrustedRoot: cfg.TUFRootFile,
		CacheDir: filepath.Join(cfg.StateDir, "tuf"), Log: log}} // updatectl install
	go func() { errc <- control.Serve(ctx, l, api, log) }()
	n := 1
	// READY=1 waits for the D-Bus name (or for it to be clear there will be none), so that a
	// locksmithd ordered after this unit finds com.coreos.update1.
	dbusSettled := make(chan struct{})
	if cfg.DBus != config.DBusOff {
		n++
		var once sync.Once
		settled := func() { once.Do(func() { close(dbusSettled) }) }
		go func() { errc <- serveDBus(ctx, cfg.DBus, d.engine, log, settled) }()
	} else {
		close(dbusSettled)
	}
	if cfg.MetricsAddr != "" {
		host, _, err := net.SplitHostPort(cfg.MetricsAddr)
		if err != nil || !transport.IsLoopback(host) {
			return fmt.Errorf("METRICS_ADDR %q: metrics listen on loopback only", cfg.MetricsAddr)
		}
		ml, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		srv := &http.Server{Handler: promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			<-ctx.Done()
			srv.Close()
		}()
		n++
		go func() {
			if err := srv.Serve(ml); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
				return
			}
			errc <- nil
		}()
		if d.lock != nil {
			n++
			go func() {
				d.lock.Monitor(ctx, lockMonitorInterval)
				errc <- nil
			}()
		}
	}
	// systemd (Type=notify): the watchdog is fed while the engine's state lock can be taken
	// (a loop stuck holding it starves the watchdog); ready once the sockets listen.
	n++
	go func() {
		notify.Watchdog(ctx, func(context.Context) error { d.engine.Snapshot(); return nil })
		errc <- nil
	}()
	select {
	case <-dbusSettled:
	case <-ctx.Done():
	}
	notify.Ready()
	log.Info("update-engine started", "server", cfg.Server, "group", cfg.Group, "version", cfg.Version,
		"disk", cfg.Disk, "socket", cfg.ControlSocket, "strategy", cfg.RebootStrategy)
	err = d.engine.Run(ctx)
	notify.Stopping()
	cancel()
	for i := 0; i < n; i++ {
		if e := <-errc; e != nil && err == nil {
			err = e
		}
	}
	return err
}

func wire(ctx context.Context, cfg config.Config, log *slog.Logger) (*daemon, error) {
	d := &daemon{reg: prometheus.NewRegistry()}
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.Version == "" {
		return nil, errors.New("the running version is unknown: set FLATCAR_RELEASE_VERSION (or -version)")
	}
	if cfg.Disk == "" {
		return nil, errors.New("no disk: set DISK (or -disk)")
	}
	machineID := cfg.MachineID
	if machineID == "" {
		var err error
		if machineID, err = omahaclient.ReadMachineID(cfg.MachineIDFile); err != nil {
			return nil, err
		}
	}
	bootID, err := omahaclient.ReadBootID(cfg.BootIDFile)
	if err != nil {
		return nil, err
	}
	store := state.Store{Dir: cfg.StateDir}
	st, err := store.Load()
	if err != nil {
		return nil, err
	}

	tp := transport.Config{CAFile: cfg.CAFile, ClientCertFile: cfg.ClientCertFile, ClientKeyFile: cfg.ClientKeyFile,
		AllowPlainHTTP: cfg.AllowPlainHTTP, HeaderTimeout: cfg.HTTPTimeout}
	if err := tp.CheckURL(cfg.Server); err != nil {
		return nil, err
	}
	hc, err := tp.NewClient()
	if err != nil {
		return nil, err
	}
	if cfg.OEM == "" {
		cfg.OEM, cfg.OEMVersion = config.ReadOEM(config.OEMReleaseFiles()...)
	}
	oc := &omahaclient.Client{URL: cfg.Server, HTTP: transport.RequestTimeout(hc, cfg.HTTPTimeout), Log: log, Host: omaha.Host{
		AppID: cfg.AppID, Version: cfg.Version, Track: cfg.Group, Board: cfg.Board,
		MachineID: machineID, BootID: bootID, MachineAlias: cfg.MachineAlias, OEM: cfg.OEM, OEMVersion: cfg.OEMVersion,
		AlephVersion: st.Aleph(cfg.Version),
	}}
	oc.DeltaOK = cfg.DeltaUpdates
	id, err := identity.LoadOrCreate(cfg.StateDir, nil)
	if err != nil {
		return nil, err
	}
	oc.Signer = id
	log.Info("host identity", "key", id.PublicKeyString(), "file", filepath.Join(cfg.StateDir, identity.PublicKeyFile))

	tu, err := cfg.TUFBaseURL()
	if err != nil {
		return nil, err
	}
	if err := tp.CheckURL(tu); err != nil {
		return nil, err
	}
	tufHTTP := *hc
	tufHTTP.Timeout = cfg.HTTPTimeout
	tc, err := tufclient.New(tufclient.Config{MetadataURL: tu, TrustedRoot: cfg.TUFRootFile,
		CacheDir: filepath.Join(cfg.StateDir, "tuf"), HTTPClient: &tufHTTP, Logger: log})
	if err != nil {
		return nil, err
	}

	var verifier *keys.Verifier
	files, err := keys.KeyFiles(cfg.PayloadKeys)
	if err != nil {
		return nil, fmt.Errorf("payload keys: %w", err)
	}
	if len(files) == 0 {
		log.Error("no payload key installed: every update will be refused", "PAYLOAD_KEYS", cfg.PayloadKeys)
	} else if verifier, err = keys.LoadVerifier(files...); err != nil {
		return nil, err
	}

	dk := &disk.Disk{Path: cfg.Disk, Active: cfg.ActivePartition}
	inst := &install.Installer{Disk: dk, HTTP: hc, CheckURL: tp.CheckURL, Keys: verifier, Log: log}
	if inst.XZCommand, err = payload.XZDecoderCommand(cfg.XZDecoder); err != nil {
		return nil, fmt.Errorf("XZ_DECODER=%s: %w", cfg.XZDecoder, err)
	}

	// best-effort is decided once, here: etcd-lock with an etcd endpoint, else reboot.
	if cfg.RebootStrategy == strategy.BestEffort {
		cfg.RebootStrategy = cfg.ResolvedRebootStrategy()
		log.Info("REBOOT_STRATEGY=best-effort resolved", "strategy", cfg.RebootStrategy, "etcd_endpoints", cfg.EtcdEndpoints)
	}
	rb, err := rebooter(cfg, machineID, bootID, hc, log, d)
	if err != nil {
		return nil, err
	}

	var hcheck engine.Health
	if len(cfg.HealthCommands) > 0 || len(cfg.HealthUnits) > 0 || cfg.HealthMinUptime > 0 {
		hcheck = &health.Checker{Commands: cfg.HealthCommands, Units: cfg.HealthUnits, MinUptime: cfg.HealthMinUptime,
			Timeout: cfg.HealthTimeout, Log: log}
	}
	statuses := make([]string, 0, 8)
	for _, s := range engine.Statuses() {
		statuses = append(statuses, string(s))
	}
	m, err := metrics.New(d.reg, statuses)
	if err != nil {
		return nil, err
	}
	m.OSInfo(cfg.Version, cfg.Board, cfg.Group)
	e, err := engine.New(engine.Options{
		Server: oc, Trust: trust.TUF{Client: tc}, Boot: dk, Installer: inst, Rebooter: rb, Health: hcheck, Store: store,
		PostReboot: rebootHook("post-reboot", cfg.PostRebootHook, cfg.RebootHookTimeout, log),
		Log:        log, Metrics: m,
		Policy: schedule.Policy{FirstDelay: cfg.FirstCheckDelay, FirstFuzz: cfg.FirstCheckFuzz, Interval: cfg.CheckInterval,
			Fuzz: cfg.CheckFuzz, MaxBackoff: cfg.MaxBackoff, MinPoll: cfg.MinPollInterval, MaxPoll: cfg.MaxPollInterval},
		Version: cfg.Version, Board: cfg.Board, BootID: bootID, BuildTime: cfg.BuildTime, RebootStrategy: string(cfg.RebootStrategy),
	})
	if err != nil {
		return nil, err
	}
	d.engine = e
	return d, nil
}

// rebooter builds the reboot strategy with its lock.
func rebooter(cfg config.Config, machineID, bootID string, hc *http.Client, log *slog.Logger, d *daemon) (engine.Rebooter, error) {
	var lock strategy.Locker
	host, _ := os.Hostname()
	switch cfg.RebootStrategy {
	case strategy.EtcdLock:
		cli, err := rebootlock.NewClient(rebootlock.EtcdConfig{Endpoints: cfg.EtcdEndpoints, CAFile: cfg.EtcdCAFile,
			CertFile: cfg.EtcdCertFile, KeyFile: cfg.EtcdKeyFile})
		if err != nil {
			return nil, err
		}
		d.closers = append(d.closers, func() { cli.Close() })
		// The lock's gauges (holders, stale holders) for this host's lock group, on the
		// daemon's registry: an etcd-lock fleet has no FleetLock server to export them.
		lm, err := rebootlock.NewMetrics(d.reg)
		if err != nil {
			return nil, err
		}
		sem, err := rebootlock.New(cli, cfg.LockGroup, rebootlock.Options{Logger: log, Metrics: lm})
		if err != nil {
			return nil, err
		}
		d.closers = append(d.closers, func() { sem.Close() })
		d.lock = sem
		lock = sem.Slot(rebootlock.Holder{ID: machineID, Hostname: host, BootID: bootID, FromVersion: cfg.Version, Via: "etcd"})
	case strategy.FleetLock:
		c, err := fleetlock.NewClient(cfg.FleetLockURL, cfg.LockGroup, machineID, hc)
		if err != nil {
			return nil, err
		}
		lock = c
	}
	windows, err := window.Combine(cfg.RebootWindows, cfg.RebootWindowStart, cfg.RebootWindowLength, nil)
	if err != nil {
		return nil, err
	}
	if cfg.RebootStrategy == strategy.Off {
		// The engine reboots nothing without a Rebooter; UPDATED_NEED_REBOOT stays visible
		// until a person reboots.
		log.Info("reboot strategy is off: reboot by hand to finish each update")
		return nil, nil
	}
	sc := strategy.Config{Strategy: cfg.RebootStrategy, Windows: windows, Lock: lock,
		Rebooter: strategy.Command(cfg.RebootCommand), Logger: log,
		// Called only while the engine runs, after wire has set d.engine.
		Postponed: func(err error) { d.engine.RebootPostponed(err) }}
	if h := rebootHook("pre-reboot", cfg.PreRebootHook, cfg.RebootHookTimeout, log); h != nil {
		sc.PreReboot = h
	}
	c, err := strategy.New(sc)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// rebootHook is a configured hook command, or nil (as an interface) when none is set.
func rebootHook(name string, argv []string, timeout time.Duration, log *slog.Logger) engine.Hook {
	if len(argv) == 0 {
		return nil
	}
	return hook.Command{Name: name, Argv: argv, Timeout: timeout, Log: log}
}

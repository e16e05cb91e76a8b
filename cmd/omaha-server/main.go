// Command omaha-server is Switchyard's update server: the Omaha v3 endpoint, payload
// hosting, the admin API and metrics (see package omaha-server/server).
//
//	omaha-server [serve] [--listen ADDR] [--data-dir DIR] [--db postgres://…] [--tls-cert F --tls-key F] …
//	omaha-server token create|list|revoke [--data-dir DIR | --db postgres://…] … (tokens.go)
//
// main only wires: the cobra commands (newRoot; token's in tokens.go) put their flags into
// a config and call its run.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/postgres"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
	"github.com/switchyard-os/switchyard/sdnotify"
)

const serverLong = `Switchyard's update server: the Omaha v3 endpoint, payload hosting, the admin API and
metrics. Without a command it serves (flags as for serve):

  omaha-server [serve] [flags]         serve the Omaha endpoint, payloads, admin API and metrics
  omaha-server token create [flags]    create an admin API token (printed as the last line)
  omaha-server token list [flags]      list tokens (never their values)
  omaha-server token revoke [flags] ID revoke a token at once, on every replica`

// errUsage marks an error that is the caller's wording: main prints it in one line with a
// hint to run the command's --help, and exits 2.
var errUsage = usage.ErrUsage

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(usage.Report(os.Stderr, "omaha-server", err))
}

// newRoot returns omaha-server's command tree: serve (also what runs without a command)
// and token. now is the token commands' clock; ready, when set, receives serve's listening
// address.
func newRoot(now func() time.Time, ready func(addr string)) *cobra.Command {
	root := &cobra.Command{Use: "omaha-server [serve] [flags]", Short: "the Switchyard update server", Long: serverLong}
	return usage.Group(root, newServeCmd(ready), newTokenCmd(now), newBackupCmd())
}

// run runs one omaha-server command. --help prints that command's usage and returns nil.
// Without a command (no arguments, or flags first) it serves, as it always has.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") && !isHelpOrVersion(args[0]) {
		args = append([]string{"serve"}, args...)
	}
	return usage.Execute(ctx, newRoot(time.Now, nil), args, stdout, stderr)
}

func isHelpOrVersion(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "-version", "--version", "-v":
		return true
	}
	return false
}

// storeFlags are the flags that pick the store.
type storeFlags struct {
	dataDir string
	db      string
}

func (s *storeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&s.dataDir, "data-dir", "/var/lib/omaha-server", "data directory: the SQLite database and hosted payloads")
	fs.StringVar(&s.db, "db", "", "PostgreSQL URL (postgres://user@host/db); empty: SQLite in --data-dir")
}

func (s *storeFlags) open(ctx context.Context) (store.Store, string, error) {
	if s.db != "" {
		if !strings.HasPrefix(s.db, "postgres://") && !strings.HasPrefix(s.db, "postgresql://") {
			return nil, "", fmt.Errorf("--db %q: want a postgres:// URL", s.db)
		}
		st, err := postgres.Open(ctx, s.db, postgres.Options{})
		return st, "postgres", err
	}
	if err := os.MkdirAll(s.dataDir, 0o750); err != nil {
		return nil, "", err
	}
	st, err := sqlite.Open(ctx, filepath.Join(s.dataDir, sqlite.FileName), nil)
	return st, "sqlite", err
}

// serveConfig is what serve's flags set.
type serveConfig struct {
	storeFlags
	listen, tlsCert, tlsKey string
	server                  server.Config
	logLevel                string
	logFormat               string
	tuf                     tufFlags
	fleetLock               fleetLockFlags
	maint                   maintenanceFlags
	identity                hostIdentityFlags
	payloadStore            payloadStoreFlags
	notify                  notifyFlags
}

// serve runs `omaha-server serve ARGS` until ctx ends. ready, when set, receives the
// listening address.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(addr string)) error {
	return usage.Execute(ctx, newRoot(time.Now, ready), append([]string{"serve"}, args...), stdout, stderr)
}

// newServeCmd returns `omaha-server serve`. ready, when set, receives the listening address.
func newServeCmd(ready func(addr string)) *cobra.Command {
	cmd := &cobra.Command{Use: "serve [flags]", Short: "serve the Omaha endpoint, payloads, admin API and metrics", Args: usage.NoArgs}
	fs := cmd.Flags()
	c := &serveConfig{}
	c.register(fs)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8080", "address to listen on; a non-loopback address needs --tls-cert and --tls-key")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate (PEM)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "TLS private key (PEM)")
	fs.StringVar(&c.server.PublicURL, "public-url", "", "base URL hosts reach this server at (prefixes payload URLs); empty: from each request")
	fs.StringVar(&c.server.ServerName, "server-name", "switchyard", "the server attribute of Omaha responses")
	fs.Int64Var(&c.server.MaxPayloadBytes, "max-payload-bytes", server.DefaultMaxPayloadBytes, "largest payload an upload may carry")
	fs.DurationVar(&c.server.CatalogTTL, "catalog-ttl", time.Second, "how long a cached catalog is used before checking the database for changes")
	registerLimits(fs, &c.server)
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text (key=value) or json (one JSON object a line)")
	c.tuf.register(fs)
	c.fleetLock.register(fs)
	c.maint.register(fs)
	c.identity.register(fs)
	c.payloadStore.register(fs, &c.server)
	c.notify.register(fs)
	cmd.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
		if err := c.identity.apply(&c.server); err != nil {
			return err
		}
		if err := c.notify.apply(&c.server); err != nil {
			return err
		}
		return c.serve(ctx, stdout, stderr, ready)
	})
	return cmd
}

// serve runs the server c describes until ctx ends.
func (c *serveConfig) serve(ctx context.Context, stdout, stderr io.Writer, ready func(addr string)) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level: %v", errUsage, err)
	}
	var log *slog.Logger
	switch opts := (&slog.HandlerOptions{Level: level}); c.logFormat {
	case "text":
		log = slog.New(slog.NewTextHandler(stderr, opts))
	case "json":
		log = slog.New(slog.NewJSONHandler(stderr, opts))
	default:
		return fmt.Errorf("%w: --log-format %q: want text or json", errUsage, c.logFormat)
	}
	notify, err := sdnotify.New(log)
	if err != nil {
		return err
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return fmt.Errorf("%w: --tls-cert and --tls-key go together", errUsage)
	}
	useTLS := c.tlsCert != ""
	if !useTLS && !loopback(c.listen) {
		return fmt.Errorf("refusing to serve plain HTTP on %s: without --tls-cert and --tls-key only a loopback address (127.0.0.1, [::1], localhost) is allowed", c.listen)
	}
	var tlsConfig *tls.Config
	if useTLS {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return fmt.Errorf("loading the TLS key pair: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	st, kind, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	c.server.DataDir = c.dataDir
	if err := c.payloadStore.apply(ctx, &c.server, log); err != nil {
		return err
	}
	if err := os.MkdirAll(c.dataDir, 0o750); err != nil {
		return err
	}
	if c.tuf.enabled() {
		if c.server.TUF, err = c.tuf.config(c.dataDir); err != nil {
			return err
		}
		c.server.TUFResignInterval = c.tuf.resignEvery
	}
	var fleet *lazyHandler
	if c.fleetLock.list != "" {
		fleet = &lazyHandler{}
		c.server.FleetLock = fleet
	}
	if !c.maint.noDashboard {
		c.server.Dashboard = server.NewDashboard(st, log, nil)
	}
	h, err := server.New(ctx, c.server, st, log)
	if err != nil {
		return err
	}
	defer h.Close()
	c.maint.m.Logger = log
	mctx, mcancel := context.WithCancel(ctx)
	mdone := make(chan struct{})
	go func() { defer close(mdone); server.RunMaintenance(mctx, st, c.maint.m) }()
	defer func() { mcancel(); <-mdone }()
	rctx, rcancel := context.WithCancel(ctx)
	rdone := make(chan struct{})
	go func() {
		defer close(rdone)
		if err := h.Run(rctx); err != nil {
			log.Error("background work stopped", "err", err)
		}
	}()
	defer func() { rcancel(); <-rdone }()
	if c.server.TUF != nil {
		log.Info("serving the TUF repository under /tuf/", "dir", c.server.TUF.Dir)
	}
	if fleet != nil {
		fh, closeEtcd, err := c.fleetLock.handler(log, h.Registry())
		if err != nil {
			return err
		}
		defer closeEtcd()
		fleet.set(fh)
		log.Info("serving FleetLock under /v1/pre-reboot and /v1/steady-state", "etcd", c.fleetLock.list)
	}
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	// ReadTimeout is the fallback for requests the router's middleware does not reach;
	// the router's routes set their own deadlines, which replace it (an upload's is longer).
	readTimeout := c.server.Limits.ReadTimeout
	if readTimeout <= 0 {
		readTimeout = server.DefaultReadTimeout
	}
	srv := &http.Server{Handler: h, TLSConfig: tlsConfig, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: readTimeout,
		IdleTimeout: 2 * time.Minute, ConnState: h.ConnState, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	if useTLS {
		ln = tls.NewListener(ln, tlsConfig)
		log.Info("serving HTTPS", "addr", ln.Addr().String(), "store", kind, "data_dir", c.dataDir)
	} else {
		log.Warn("serving plain HTTP on loopback only; give --tls-cert and --tls-key to serve other hosts", "addr", ln.Addr().String(), "store", kind, "data_dir", c.dataDir)
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	// systemd (Type=notify): ready once the listener accepts; the watchdog is fed while the
	// store answers, like /healthz.
	notify.Ready()
	wctx, wcancel := context.WithCancel(ctx)
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		notify.Watchdog(wctx, func(hctx context.Context) error { _, err := st.Generation(hctx); return err })
	}()
	defer func() { wcancel(); <-wdone }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	notify.Stopping()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// loopback reports whether addr (host:port) can only be reached from this machine.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// registerLimits adds the flags of server.Limits and the Omaha body cap.
func registerLimits(fs *pflag.FlagSet, c *server.Config) {
	l := &c.Limits
	fs.DurationVar(&l.OmahaReadTimeout, "omaha-read-timeout", server.DefaultOmahaReadTimeout, "time to read an Omaha request body after its headers")
	fs.DurationVar(&l.UploadReadTimeout, "upload-read-timeout", server.DefaultUploadReadTimeout, "time to read a payload upload after its headers")
	fs.DurationVar(&l.ReadTimeout, "read-timeout", server.DefaultReadTimeout, "time to read the body of any other request after its headers")
	fs.IntVar(&l.MaxConns, "max-conns", server.DefaultMaxConns, "connections open at once; more are closed on accept (0: no limit)")
	fs.Float64Var(&l.OmahaRate, "omaha-rate", server.DefaultOmahaRate, "Omaha requests per second per source address (an IPv6 /64); more are answered 429 (0: no limit)")
	fs.IntVar(&l.OmahaBurst, "omaha-burst", server.DefaultOmahaBurst, "Omaha requests a source may send at once before --omaha-rate applies")
	fs.IntVar(&l.MaxOmahaApps, "omaha-max-apps", server.DefaultMaxOmahaApps, "apps in one Omaha request; more are answered 400")
	fs.IntVar(&l.MaxOmahaEvents, "omaha-max-events", server.DefaultMaxOmahaEvents, "events of one app in one Omaha request; more are answered 400")
	fs.Int64Var(&c.MaxOmahaBodyBytes, "max-omaha-body-bytes", server.DefaultMaxOmahaBodyBytes, "largest Omaha request body; larger is answered 413")
}

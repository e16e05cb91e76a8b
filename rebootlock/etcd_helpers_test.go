package rebootlock_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/switchyard-os/switchyard/rebootlock"
)

// cluster is an in-process etcd cluster on loopback ports.
type cluster struct {
	members   []*embed.Etcd
	endpoints []string
}

// freePorts returns n distinct free loopback ports (held open until all are chosen).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// startCluster starts an n-member cluster. tlsInfo, when not nil, secures the client URLs.
func startCluster(t testing.TB, n int, tlsInfo *transport.TLSInfo) *cluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	scheme := "http"
	if tlsInfo != nil {
		scheme = "https"
	}
	var initial []string
	cfgs := make([]*embed.Config, n)
	c := &cluster{}
	for i := range n {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = t.TempDir()
		cu, _ := url.Parse(fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i]))
		pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]))
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
		cfg.Logger, cfg.LogLevel, cfg.LogOutputs = "zap", "error", []string{"/dev/null"}
		cfg.UnsafeNoFsync = true
		cfg.TickMs, cfg.ElectionMs = 50, 500
		if tlsInfo != nil {
			cfg.ClientTLSInfo = *tlsInfo
		}
		initial = append(initial, fmt.Sprintf("%s=%s", cfg.Name, pu))
		c.endpoints = append(c.endpoints, cu.String())
		cfgs[i] = cfg
	}
	c.members = make([]*embed.Etcd, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, cfg := range cfgs {
		cfg.InitialCluster = strings.Join(initial, ",")
		cfg.InitialClusterToken = t.Name()
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := embed.StartEtcd(cfg)
			if err != nil {
				errs[i] = err
				return
			}
			c.members[i] = e
			select {
			case <-e.Server.ReadyNotify():
			case <-time.After(30 * time.Second):
				errs[i] = fmt.Errorf("member %d not ready after 30 s", i)
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, e := range c.members {
			if e != nil {
				e.Close()
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			t.Fatalf("starting etcd: %v", err)
		}
	}
	return c
}

// kill stops member i.
func (c *cluster) kill(i int) {
	c.members[i].Close()
	c.members[i] = nil
}

// leader returns the index of the member that leads, waiting for an election if there is
// none.
func (c *cluster) leader(t *testing.T) int {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		var changed <-chan struct{}
		for i, e := range c.members {
			if e == nil {
				continue
			}
			if changed == nil {
				changed = e.Server.LeaderChangedNotify()
			}
			if e.Server.Leader() == e.Server.MemberID() {
				return i
			}
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatal("no leader")
		}
	}
}

func (c *cluster) client(t testing.TB, cfg rebootlock.EtcdConfig) *clientv3.Client {
	t.Helper()
	if cfg.Endpoints == nil {
		cfg.Endpoints = c.endpoints
	}
	cli, err := rebootlock.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func newSem(t *testing.T, cli *clientv3.Client, group string, opts rebootlock.Options) *rebootlock.Semaphore {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = "/test"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Jitter == 0 {
		opts.Jitter = 20 * time.Millisecond
	}
	s, err := rebootlock.New(cli, group, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// waits is an Options.Waiting hook the test synchronises on.
type waits chan struct{}

func newWaits() waits { return make(waits, 1) }

func (w waits) hook() {
	select {
	case w <- struct{}{}:
	default:
	}
}

// await returns once Lock has found the group full and waits; it fails if Lock returned
// (on got) first.
func (w waits) await(t *testing.T, got <-chan error) {
	t.Helper()
	select {
	case <-w:
	case err := <-got:
		t.Fatalf("Lock returned (%v) instead of waiting for a slot", err)
	case <-time.After(15 * time.Second):
		t.Fatal("Lock neither waited nor returned")
	}
}

// logWatch is a slog.Handler that hands every message to the test.
type logWatch struct{ msgs chan string }

func newLogWatch() *logWatch { return &logWatch{msgs: make(chan string, 256)} }

func (l *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (l *logWatch) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logWatch) WithGroup(string) slog.Handler            { return l }
func (l *logWatch) Handle(_ context.Context, r slog.Record) error {
	select {
	case l.msgs <- r.Message:
	default: // the test does not wait for this one
	}
	return nil
}

// await returns once msg was logged.
func (l *logWatch) await(t *testing.T, msg string) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case m := <-l.msgs:
			if m == msg {
				return
			}
		case <-timeout:
			t.Fatalf("%q was never logged", msg)
		}
	}
}

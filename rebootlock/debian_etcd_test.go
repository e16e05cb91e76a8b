package rebootlock_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/switchyard-os/switchyard/rebootlock"
)

const debianEtcd = "/usr/bin/etcd"

// startDebianEtcd runs Debian's etcd-server binary on free loopback ports in a temp dir:
// an etcd this module did not embed.
func startDebianEtcd(t *testing.T) *cluster {
	t.Helper()
	if _, err := os.Stat(debianEtcd); err != nil {
		t.Skipf("SKIPPED LOUDLY: %s is missing, so the suite against an etcd we did not embed did not run; "+
			"install it with `apt-get install etcd-server` (or `make deps`)", debianEtcd)
	}
	ports := freePorts(t, 2)
	dir := t.TempDir()
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, debianEtcd,
		"--name", "deb", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "deb="+peer, "--initial-cluster-state", "new",
		"--heartbeat-interval", "50", "--election-timeout", "500",
		"--unsafe-no-fsync", "--log-level", "error", "--logger", "zap")
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", debianEtcd, err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		logf.Close()
	})
	c := &cluster{endpoints: []string{client}}
	// A client whose requests wait for the connection instead of failing fast: the first
	// read returns once etcd serves.
	ready, err := clientv3.New(clientv3.Config{
		Endpoints:   c.endpoints,
		DialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.WaitForReady(true))},
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	rctx, rcancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer rcancel()
	if _, err := ready.Get(rctx, "health"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "etcd.log"))
		t.Fatalf("%s did not come up: %v\n%s", debianEtcd, err, log)
	}
	return c
}

// TestDebianEtcd runs the basic suite against Debian's etcd-server.
func TestDebianEtcd(t *testing.T) {
	c := startDebianEtcd(t)
	cli := c.client(t, rebootlock.EtcdConfig{})
	ctx := ctxT(t, 2*time.Minute)

	t.Run("lock is idempotent and bounded", func(t *testing.T) {
		s := newSem(t, cli, "basic", rebootlock.Options{})
		for range 2 {
			if err := s.TryLock(ctx, rebootlock.Holder{ID: "a"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.TryLock(ctx, rebootlock.Holder{ID: "b"}); !errors.Is(err, rebootlock.ErrFull) {
			t.Fatalf("second holder: %v, want ErrFull", err)
		}
		if _, err := s.SetMax(ctx, 2); err != nil {
			t.Fatal(err)
		}
		if err := s.TryLock(ctx, rebootlock.Holder{ID: "b"}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"a", "a", "b", "never"} {
			if err := s.Unlock(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if st, err := s.Status(ctx); err != nil || len(st.Holders) != 0 || st.Max != 2 {
			t.Fatalf("status %+v, %v", st, err)
		}
	})
	t.Run("garbage holder counts", func(t *testing.T) {
		s := newSem(t, cli, "junk", rebootlock.Options{})
		if _, err := cli.Put(ctx, "/test/groups/junk/holders/ghost", "\x00garbage"); err != nil {
			t.Fatal(err)
		}
		if err := s.TryLock(ctx, rebootlock.Holder{ID: "a"}); !errors.Is(err, rebootlock.ErrFull) {
			t.Fatalf("%v, want ErrFull", err)
		}
	})
	t.Run("stale holder", func(t *testing.T) {
		host := newSem(t, cli, "stale", rebootlock.Options{LivenessTTL: time.Second, RebootDeadline: time.Second})
		if err := host.TryLock(ctx, rebootlock.Holder{ID: "gone"}); err != nil {
			t.Fatal(err)
		}
		host.Close()
		admin := newSem(t, cli, "stale", rebootlock.Options{})
		waitStatus(t, cli, admin, func(st rebootlock.Status) bool { return len(st.Holders) == 1 && st.Holders[0].Stale })
		if err := admin.Reclaim(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("contention", func(t *testing.T) {
		contend(t, c, 12, 3, nil)
	})
}

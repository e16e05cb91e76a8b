// Package etcdtest starts a real, one-member etcd in-process (go.etcd.io/etcd/server/v3/embed)
// on free loopback ports, for tests of the reboot lock and of everything that takes it (the
// daemon, omaha-server's FleetLock endpoint, the QEMU scenarios). Only tests and test
// harnesses import it; the etcd it starts is stopped and its data removed when the test ends.
package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// readyTimeout bounds how long a starting etcd may take.
const readyTimeout = 30 * time.Second

// Start runs a one-member etcd on free loopback ports and returns its client URL
// ("http://127.0.0.1:PORT"). fsync is off: tests trade durability for speed.
func Start(t testing.TB) string {
	t.Helper()
	var ports []int
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("etcdtest: %v", err)
		}
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		l.Close()
	}
	cfg := embed.NewConfig()
	cfg.Dir = t.TempDir()
	cu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", ports[0]))
	pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", ports[1]))
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.Name + "=" + pu.String()
	cfg.Logger, cfg.LogLevel, cfg.LogOutputs = "zap", "error", []string{"/dev/null"}
	cfg.UnsafeNoFsync = true
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("etcdtest: starting etcd: %v", err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(readyTimeout):
		t.Fatalf("etcdtest: etcd not ready after %s", readyTimeout)
	}
	return cu.String()
}

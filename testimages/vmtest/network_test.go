package vmtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/testimages/image"
)

// TestGuestNetwork checks the guest's network: through the guestfwd rule it reaches an HTTP
// server on the host's loopback, and nothing else: not another loopback server through the
// gateway address, not a guest-side port without a rule.
func TestGuestNetwork(t *testing.T) {
	env := newEnv(t)
	var forwarded, other atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		forwarded.Add(1)
		fmt.Fprintf(w, "hello from the host, path %s", r.URL.Path)
	}))
	defer srv.Close()
	hidden := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		other.Add(1)
		fmt.Fprint(w, "this must not be reachable")
	}))
	defer hidden.Close()
	host, err := netip.ParseAddrPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, hiddenPort, err := net.SplitHostPort(hidden.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}

	disk := env.Disk(t, &image.OS{Version: "1.0.0"}, nil)
	allowed := "http://10.0.2.100/greeting"
	viaGateway := "http://10.0.2.2:" + hiddenPort + "/"
	noRule := "http://10.0.2.100:81/"
	vm := env.Start(t, disk, []string{
		"switchyard.fetch=" + allowed,
		"switchyard.fetch=" + viaGateway,
		"switchyard.fetch=" + noRule,
		"switchyard.server=http://10.0.2.100/v1/update/",
		"switchyard.conf=REBOOT_STRATEGY=off",
	}, env.Forward(80, host))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name string
		line *regexp.Regexp
	}{
		{name: "update.conf", line: regexp.MustCompile(`^switchyard-testos: wrote /etc/switchyard/update.conf keys=2$`)},
		{name: "forwarded", line: regexp.MustCompile(`^switchyard-testos: fetch url=` + regexp.QuoteMeta(allowed) + ` status=200 body="hello from the host, path /greeting"$`)},
		{name: "host through the gateway", line: regexp.MustCompile(`^switchyard-testos: fetch url=` + regexp.QuoteMeta(viaGateway) + ` error=`)},
		{name: "port without a rule", line: regexp.MustCompile(`^switchyard-testos: fetch url=` + regexp.QuoteMeta(noRule) + ` error=`)},
	} {
		if _, err := vm.Expect(ctx, tc.line); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	if _, err := vm.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if n := forwarded.Load(); n != 1 {
		t.Fatalf("the forwarded server saw %d requests, want 1", n)
	}
	if n := other.Load(); n != 0 {
		t.Fatalf("the unforwarded server saw %d requests", n)
	}
}

// TestRebootAndPowerCut checks the runner's view of boots: a reboot inside the guest ends the
// QEMU process (-no-reboot), Restart boots the same disk again, and Kill cuts the power in the
// middle of a boot without stopping the next one from coming up. With busybox-static on the
// host the reboot is asked for as an update engine would, by signalling PID 1 (busybox reboot
// sends SIGTERM); without it the test OS reboots on its own (switchyard.action=reboot).
func TestRebootAndPowerCut(t *testing.T) {
	env := newEnv(t)
	osA := image.OS{Version: "1.0.0"}
	cmdline := []string{"switchyard.action=wait"}
	if _, err := os.Stat("/bin/busybox"); err == nil {
		osA.Busybox = true
		osA.Services = []string{"/usr/bin/sy-health", "/usr/bin/busybox reboot"}
	} else {
		t.Log("LOUD NOTE: busybox-static is missing, so the reboot is not requested by signal; run: apt-get install busybox-static")
		cmdline = []string{"switchyard.action=reboot"}
	}
	disk := env.Disk(t, &osA, nil)
	vm := env.Start(t, disk, cmdline)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for boot := 1; boot <= 3; boot++ {
		if boot > 1 {
			if err := vm.Restart(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := vm.Expect(ctx, bootLine); err != nil {
			t.Fatalf("boot %d: %v", boot, err)
		}
		if boot == 2 {
			vm.Kill() // power cut right after the boot selector
			continue
		}
		if _, err := vm.Expect(ctx, regexp.MustCompile(`^switchyard-testos: reboot$`)); err != nil {
			t.Fatalf("boot %d: %v", boot, err)
		}
		if _, err := vm.Wait(ctx); err != nil {
			t.Fatalf("boot %d: %v", boot, err)
		}
	}
	if got := vm.Boots(); got != 3 {
		t.Fatalf("%d boots, want 3", got)
	}
}

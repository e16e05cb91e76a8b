package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/partitions/layout"
	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/payload"
	"github.com/switchyard-os/switchyard/update-engine/control"
	"github.com/switchyard-os/switchyard/update-engine/engine"
)

// cgptJudge checks partition n's attributes with Debian's cgpt, when installed.
func cgptJudge(t *testing.T, img string, n int, prio, tries, good string) {
	t.Helper()
	if _, err := exec.LookPath("cgpt"); err != nil {
		t.Log("SKIPPING the cgpt cross-check: cgpt is not installed (apt-get install cgpt, or make deps)")
		return
	}
	for flag, want := range map[string]string{"-P": prio, "-T": tries, "-S": good} {
		out, err := exec.Command("cgpt", "show", "-i", string(rune('0'+n)), flag, img).CombinedOutput()
		if err != nil {
			t.Fatalf("cgpt show %s: %v\n%s", flag, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("cgpt show -i %d %s = %s, want %s", n, flag, got, want)
		}
	}
}

func lastEvent(evs []string) string {
	if len(evs) == 0 {
		return ""
	}
	return evs[len(evs)-1]
}

func TestUpdateEndToEnd(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	activeBefore := w.activeBytes()

	out, err := w.engine(ctx, w.conf(fromVersion, "USR-A"), "-once")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "updated to "+toVersion+" on USR-B") {
		t.Fatalf("output %q", out)
	}
	if got := w.events(); !reflect.DeepEqual(got, []string{"13/1", "14/1", "3/1"}) {
		t.Errorf("events after the update %v", got)
	}
	b := w.slot(layout.NumUSRB)
	if b.Priority != 2 || b.Tries != 1 || b.Successful {
		t.Errorf("USR-B after the flip: %+v", b)
	}
	if a := w.slot(layout.NumUSRA); a.Priority != 1 || !a.Successful {
		t.Errorf("USR-A after the flip: %+v", a)
	}
	cgptJudge(t, w.diskPath, layout.NumUSRB, "2", "1", "0")
	if w.activeBytes() != activeBefore {
		t.Fatal("the active partition changed")
	}
	if got := w.partitionB(); !bytes.Equal(got[:len(w.image)], w.image) {
		t.Fatal("USR-B does not hold the new image")
	}

	// Before the reboot, another run does nothing.
	if out, err := w.engine(ctx, w.conf(fromVersion, "USR-A"), "-once"); err != nil || !strings.Contains(out, "already applied") {
		t.Errorf("second -once: %q, %v", out, err)
	}
	if out, err := w.engine(ctx, w.conf(fromVersion, "USR-A"), "-post-boot"); err != nil || !strings.Contains(out, "waits for a reboot") {
		t.Errorf("-post-boot before the reboot: %q, %v", out, err)
	}

	// Reboot: the boot loader takes USR-B's one try; the engine confirms it.
	if got := w.bootLoader(); got != "USR-B" {
		t.Fatalf("the boot loader chose %s", got)
	}
	out, err = w.engine(ctx, w.conf(toVersion, "USR-B"), "-post-boot")
	if err != nil || !strings.Contains(out, "USR-B marked good") {
		t.Fatalf("-post-boot: %q, %v", out, err)
	}
	if got := lastEvent(w.events()); got != "3/2 prev="+fromVersion {
		t.Errorf("last event %q, want 3/2 prev=%s", got, fromVersion)
	}
	if b := w.slot(layout.NumUSRB); !b.Successful || b.Tries != 0 {
		t.Errorf("USR-B after mark good: %+v", b)
	}
	cgptJudge(t, w.diskPath, layout.NumUSRB, "2", "0", "1")
	// Up to date now.
	if out, err := w.engine(ctx, w.conf(toVersion, "USR-B"), "-once"); err != nil || !strings.Contains(out, "no update") {
		t.Errorf("-once on the new version: %q, %v", out, err)
	}
}

func TestRollbackIsReported(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	if _, err := w.engine(ctx, w.conf(fromVersion, "USR-A"), "-once"); err != nil {
		t.Fatal(err)
	}
	// The new partition boots once and dies before it is marked good; the next boot falls
	// back to USR-A.
	if got := w.bootLoader(); got != "USR-B" {
		t.Fatalf("first boot chose %s", got)
	}
	if got := w.bootLoader(); got != "USR-A" {
		t.Fatalf("fallback boot chose %s", got)
	}
	out, err := w.engine(ctx, w.conf(fromVersion, "USR-A"), "-post-boot")
	if err != nil || !strings.Contains(out, "rolled back") {
		t.Fatalf("-post-boot on the old partition: %q, %v", out, err)
	}
	if got := lastEvent(w.events()); got != "3/0 code=44" {
		t.Errorf("last event %q, want 3/0 code=44", got)
	}
}

func TestResumeAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and streams a 32 MiB payload twice")
	}
	// A payload large against the socket and read-ahead buffers, so what the server sent
	// measures what the host downloaded.
	w := newWorld(t, worldOptions{usrSize: 32 << 20, chunk: 512 << 10, noisy: true, compression: payload.ReplaceZstd})
	ctx, cancel := context.WithCancel(t.Context())
	// The daemon dies once half of the 64 operations are written and checkpointed.
	go func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			<-tick.C
			if w.resumeOp() >= 32 {
				cancel()
			}
		}
	}()
	_, err := w.engine(ctx, w.conf(fromVersion, "USR-A"), "-once")
	cancel()
	if err == nil {
		t.Fatal("the interrupted run succeeded")
	}
	if op := w.resumeOp(); op < 32 {
		t.Fatalf("checkpoint at operation %d after the kill", op)
	}
	if s := w.slot(layout.NumUSRB); s.Priority != 0 || s.Tries != 0 || s.Successful {
		t.Fatalf("half-written USR-B is bootable: %+v", s)
	}
	first := w.served.Load()
	out, err := w.engine(t.Context(), w.conf(fromVersion, "USR-A"), "-once")
	if err != nil || !strings.Contains(out, "updated to") {
		t.Fatalf("resumed run: %q, %v", out, err)
	}
	total := w.served.Load()
	t.Logf("payload %d bytes; served %d before the kill, %d in total (%.2fx)", len(w.payload), first, total, float64(total)/float64(len(w.payload)))
	if total >= int64(len(w.payload))*12/10 {
		t.Errorf("served %d bytes in total for a %d-byte payload: not resumed", total, len(w.payload))
	}
	if got := w.partitionB(); !bytes.Equal(got[:len(w.image)], w.image) {
		t.Fatal("USR-B does not hold the new image after the resume")
	}
}

func TestRefusedUpdates(t *testing.T) {
	other, _ := keys.Generate(keys.Ed25519)
	otherPEM, _ := other.Public().MarshalPEM()
	tests := []struct {
		name    string
		opts    func(*worldOptions)
		edit    func(*world)
		code    string
		running string // the host's version; fromVersion when empty
	}{
		{name: "tampered payload", edit: func(w *world) { w.tamperAt = int64(len(w.payload)) - 5000 }, code: "29"},
		// Byte 50 lies in the manifest's partition hash: it still parses, the signature fails.
		// (Omaha and TUF hash the untampered file, so only the signature can catch it.)
		{name: "tampered manifest", edit: func(w *world) { w.tamperAt = 50 }, code: "33"},
		{name: "hash TUF does not pin", opts: func(o *worldOptions) {
			// Same size, other bytes: the server announces (and serves) a hash TUF does not pin.
			o.omahaPayload = func(p []byte) []byte { p[len(p)-1] ^= 1; return p }
		}, code: "10"},
		{name: "expired TUF metadata", opts: func(o *worldOptions) { o.tufNow = time.Now().Add(-72 * time.Hour) }, code: "12"},
		{name: "downgrade", running: "4002.0.0", opts: func(o *worldOptions) { o.reportVersion = "3000.0.0" }, code: "35"},
		{name: "wrong payload key", edit: func(w *world) {
			if err := os.WriteFile(w.keyFile, otherPEM, 0o644); err != nil {
				t.Fatal(err)
			}
		}, code: "18"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o worldOptions
			if tt.opts != nil {
				tt.opts(&o)
			}
			w := newWorld(t, o)
			if tt.edit != nil {
				tt.edit(w)
			}
			activeBefore := w.activeBytes()
			running := fromVersion
			if tt.running != "" {
				running = tt.running
			}
			_, err := w.engine(t.Context(), w.conf(running, "USR-A"), "-once")
			if err == nil || !strings.Contains(err.Error(), "error code "+tt.code) {
				t.Fatalf("-once = %v, want a refusal with error code %s", err, tt.code)
			}
			if got := lastEvent(w.events()); got != "3/0 code="+tt.code {
				t.Errorf("events %v, want the last to be 3/0 code=%s", w.events(), tt.code)
			}
			if s := w.slot(layout.NumUSRB); s.Priority != 0 || s.Tries != 0 || s.Successful {
				t.Errorf("USR-B is bootable after a refusal: %+v", s)
			}
			if a := w.slot(layout.NumUSRA); a.Priority != 1 || !a.Successful {
				t.Errorf("USR-A changed: %+v", a)
			}
			if w.activeBytes() != activeBefore {
				t.Fatal("the active partition changed")
			}
		})
	}
}

// TestDaemon runs update-engine as the service does and drives it through its control
// socket, as updatectl does: an on-demand check applies the update; status, the long poll
// and the metrics endpoint report it.
func TestDaemon(t *testing.T) {
	w := newWorld(t, worldOptions{})
	metricsAddr := freeLoopbackAddr(t)
	conf := w.conf(fromVersion, "USR-A", "FIRST_CHECK_DELAY=1h", "FIRST_CHECK_FUZZ=0s", "METRICS_ADDR="+metricsAddr)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := w.engine(ctx, conf)
		done <- err
	}()
	c := control.NewClient(filepath.Join(w.dir, "ue.sock"))
	var s engine.Snapshot
	var err error
	for i := 0; ; i++ {
		if s, err = c.Status(ctx); err == nil && !s.NextCheck.IsZero() {
			break // up, and the first check is scheduled
		}
		if i > 200 {
			t.Fatalf("the daemon did not come up: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.Status != engine.StatusIdle || s.CurrentVersion != fromVersion || s.NextCheck.Before(time.Now().Add(50*time.Minute)) {
		t.Errorf("status at start %+v", s)
	}
	if _, err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	seen := map[engine.Status]bool{}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	for s.Status != engine.StatusUpdatedNeedReboot {
		if s, err = c.Wait(wctx, s.Seq); err != nil {
			t.Fatalf("waiting for the update: %v (last %+v)", err, s)
		}
		seen[s.Status] = true
		if s.Status == engine.StatusIdle && s.LastError != "" {
			t.Fatalf("update failed: %s", s.LastError)
		}
	}
	for _, st := range []engine.Status{engine.StatusCheckingForUpdate, engine.StatusDownloading, engine.StatusFinalizing} {
		if !seen[st] {
			t.Errorf("never saw %s (saw %v)", st, seen)
		}
	}
	if s.NewVersion != toVersion || s.Progress != 1 || s.LastChecked.IsZero() {
		t.Errorf("final status %+v", s)
	}
	// A check while the update waits for its reboot is a ping, not a second download.
	if _, err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`switchyard_update_engine_status{status="UPDATE_STATUS_UPDATED_NEED_REBOOT"} 1`,
		`switchyard_update_engine_updates_total{result="applied"} 1`,
		`switchyard_update_engine_checks_total{result="update"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("daemon exit: %v", err)
	}
	if got := w.events(); !reflect.DeepEqual(got, []string{"13/1", "14/1", "3/1"}) {
		t.Errorf("events %v", got)
	}
}

func freeLoopbackAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServerDown: with the server unreachable the daemon records the failure and schedules
// the next check with backoff (above the normal interval), then sleeps on a timer.
func TestServerDown(t *testing.T) {
	w := newWorld(t, worldOptions{})
	dead := freeLoopbackAddr(t) // nothing listens there
	conf := w.conf(fromVersion, "USR-A", "FIRST_CHECK_DELAY=0s", "FIRST_CHECK_FUZZ=0s")
	conf = w.path("down.conf", []byte(strings.Replace(readFile(t, conf), "SERVER="+w.srv.URL, "SERVER=https://"+dead, 1)))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := w.engine(ctx, conf)
		done <- err
	}()
	c := control.NewClient(filepath.Join(w.dir, "ue.sock"))
	deadline := time.Now().Add(30 * time.Second)
	var s engine.Snapshot
	for {
		var err error
		s, err = c.Status(ctx)
		if err == nil && s.LastError != "" && s.NextCheck.After(time.Now()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed check recorded: %+v, %v", s, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s.LastErrorCode != 2 { // OmahaRequestError: no answer
		t.Errorf("error code %d (%s), want 2", s.LastErrorCode, s.LastError)
	}
	// One failure: twice the 45 min interval with jitter, never less than the interval.
	if wait := time.Until(s.NextCheck); wait < 60*time.Minute || wait > 4*time.Hour {
		t.Errorf("next check in %v after a failure", wait)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFullDisk puts the disk image on a 3 MiB tmpfs that holds USR-A but not USR-B: the
// writes fail with ENOSPC for real, and the update is refused with code 14, USR-B left
// unbootable and USR-A untouched.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING TestFullDisk: mounting a small tmpfs needs root")
	}
	mnt := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=3m"); err != nil {
		t.Skipf("SKIPPING TestFullDisk: cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	w := newWorld(t, worldOptions{diskDir: mnt})
	activeBefore := w.activeBytes()
	_, err := w.engine(t.Context(), w.conf(fromVersion, "USR-A"), "-once")
	if err == nil || !strings.Contains(err.Error(), "error code 14") || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("-once on a full disk = %v, want error code 14 naming ENOSPC", err)
	}
	if got := lastEvent(w.events()); got != "3/0 code=14" {
		t.Errorf("events %v", w.events())
	}
	if s := w.slot(layout.NumUSRB); s.Priority != 0 || s.Tries != 0 || s.Successful {
		t.Errorf("USR-B bootable after a failed write: %+v", s)
	}
	if a := w.slot(layout.NumUSRA); a.Priority != 1 || !a.Successful {
		t.Errorf("USR-A changed: %+v", a)
	}
	if w.activeBytes() != activeBefore {
		t.Fatal("the active partition changed")
	}
}

package dbusapi

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"go.uber.org/goleak"

	"github.com/switchyard-os/switchyard/update-engine/engine"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeEngine is a scripted engine: the test sets the snapshot, the service follows it.
type fakeEngine struct {
	mu      sync.Mutex
	snap    engine.Snapshot
	changed chan struct{}
	checks  int
	resets  int
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{snap: engine.Snapshot{Status: engine.StatusIdle, Seq: 1}, changed: make(chan struct{})}
}

func (f *fakeEngine) set(fn func(*engine.Snapshot)) {
	f.mu.Lock()
	fn(&f.snap)
	f.snap.Seq++
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *fakeEngine) Snapshot() engine.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap
}

func (f *fakeEngine) Wait(ctx context.Context, after uint64) (engine.Snapshot, error) {
	for {
		f.mu.Lock()
		s, ch := f.snap, f.changed
		f.mu.Unlock()
		if s.Seq > after {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-ch:
		}
	}
}

func (f *fakeEngine) CheckNow() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.snap.Status.Settled() {
		return engine.ErrBusy
	}
	f.checks++
	return nil
}

func (f *fakeEngine) ResetStatus(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.snap.Status.Settled() {
		return engine.ErrBusy
	}
	f.resets++
	f.snap.Status = engine.StatusIdle
	return nil
}

func (f *fakeEngine) counts() (checks, resets int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checks, f.resets
}

// serve runs Serve on its own connection to addr until the test ends.
func serve(t *testing.T, addr string, eng Engine) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := Connect(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	// Serve owns the name once it answers a call: wait for the name, not for time.
	owned := make(chan struct{})
	started := make(chan error, 1)
	go func() { started <- Serve(ctx, conn, eng, nil, nil) }()
	watcher := connect(t, addr)
	if err := watcher.AddMatchSignal(dbus.WithMatchSender("org.freedesktop.DBus"), dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, Name)); err != nil {
		t.Fatal(err)
	}
	ch := make(chan *dbus.Signal, 4)
	watcher.Signal(ch)
	go func() {
		defer close(owned)
		for {
			var has bool
			if err := watcher.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, Name).Store(&has); err != nil || has {
				return
			}
			if _, ok := <-ch; !ok {
				return
			}
		}
	}()
	select {
	case <-owned:
	case err := <-started:
		t.Fatalf("Serve returned before owning the name: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-started; err != nil {
			t.Errorf("Serve: %v", err)
		}
		conn.Close()
	})
}

// connect opens a client connection closed at the end of the test.
func connect(t *testing.T, addr string) *dbus.Conn {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// busctl runs systemd's busctl, the independent judge, against the bus at addr.
func busctl(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("busctl")
	if err != nil {
		t.Skip("SKIPPING: busctl (systemd) is not installed")
	}
	out, err := exec.Command(path, append([]string{"--address=" + addr}, args...)...).CombinedOutput()
	return string(out), err
}

func TestStatusOf(t *testing.T) {
	checked := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		snap engine.Snapshot
		want Status
	}{
		{"fresh", engine.Snapshot{Status: engine.StatusIdle},
			Status{0, 0, "UPDATE_STATUS_IDLE", "0.0.0.0", 0}},
		{"downloading", engine.Snapshot{Status: engine.StatusDownloading, LastChecked: checked, Progress: 0.25, NewVersion: "4001.0.0", NewSize: 1 << 20},
			Status{checked.Unix(), 0.25, "UPDATE_STATUS_DOWNLOADING", "4001.0.0", 1 << 20}},
		{"need reboot", engine.Snapshot{Status: engine.StatusUpdatedNeedReboot, LastChecked: checked, Progress: 1, NewVersion: "4001.0.0", NewSize: 5},
			Status{checked.Unix(), 1, "UPDATE_STATUS_UPDATED_NEED_REBOOT", "4001.0.0", 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StatusOf(tt.snap); got != tt.want {
				t.Errorf("StatusOf = %+v, want %+v", got, tt.want)
			}
		})
	}
	// Every engine status is one of Flatcar's strings, unchanged.
	for _, s := range engine.Statuses() {
		if got := StatusOf(engine.Snapshot{Status: s}).CurrentOperation; got != string(s) || !strings.HasPrefix(got, "UPDATE_STATUS_") {
			t.Errorf("status %s is sent as %q", s, got)
		}
	}
}

// TestBusctl judges the service with busctl: introspection, GetStatus, AttemptUpdate and
// ResetStatus, as root (the policy lets root call everything).
func TestBusctl(t *testing.T) {
	addr := bus(t)
	eng := newFakeEngine()
	checked := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	eng.set(func(s *engine.Snapshot) {
		s.Status, s.LastChecked, s.Progress, s.NewVersion, s.NewSize = engine.StatusDownloading, checked, 0.5, "4001.0.0", 10<<20
	})
	serve(t, addr, eng)

	out, err := busctl(t, addr, "introspect", Name, string(Path))
	if err != nil {
		t.Fatalf("busctl introspect: %v\n%s", err, out)
	}
	for _, want := range []string{
		"com.coreos.update1.Manager", ".AttemptUpdate", ".ResetStatus",
		".GetStatus                 method    -         xdssx",
		".StatusUpdate              signal    xdssx",
		"org.freedesktop.DBus.Introspectable",
	} {
		if !containsFields(out, want) {
			t.Errorf("busctl introspect lacks %q:\n%s", want, out)
		}
	}

	out, err = busctl(t, addr, "--json=short", "call", Name, string(Path), Interface, "GetStatus")
	if err != nil {
		t.Fatalf("busctl call GetStatus: %v\n%s", err, out)
	}
	var reply struct {
		Type string `json:"type"`
		Data []any  `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &reply); err != nil {
		t.Fatalf("busctl output %q: %v", out, err)
	}
	want := []any{float64(checked.Unix()), 0.5, "UPDATE_STATUS_DOWNLOADING", "4001.0.0", float64(10 << 20)}
	if reply.Type != "xdssx" || len(reply.Data) != len(want) {
		t.Fatalf("GetStatus = %s %v, want xdssx %v", reply.Type, reply.Data, want)
	}
	for i := range want {
		if reply.Data[i] != want[i] {
			t.Errorf("GetStatus field %d = %v, want %v", i, reply.Data[i], want[i])
		}
	}

	// While downloading: AttemptUpdate succeeds and does nothing (Flatcar's), ResetStatus fails.
	if out, err := busctl(t, addr, "call", Name, string(Path), Interface, "AttemptUpdate"); err != nil {
		t.Errorf("AttemptUpdate while busy: %v\n%s", err, out)
	}
	if out, err := busctl(t, addr, "call", Name, string(Path), Interface, "ResetStatus"); err == nil {
		t.Errorf("ResetStatus while downloading succeeded: %s", out)
	}
	if c, r := eng.counts(); c != 0 || r != 0 {
		t.Errorf("busy engine got %d checks, %d resets", c, r)
	}
	eng.set(func(s *engine.Snapshot) { s.Status = engine.StatusUpdatedNeedReboot })
	for _, m := range []string{"AttemptUpdate", "ResetStatus"} {
		if out, err := busctl(t, addr, "call", Name, string(Path), Interface, m); err != nil {
			t.Errorf("%s: %v\n%s", m, err, out)
		}
	}
	if c, r := eng.counts(); c != 1 || r != 1 {
		t.Errorf("settled engine got %d checks, %d resets, want 1 and 1", c, r)
	}
}

// containsFields reports whether some line of out has the fields of want, in order.
func containsFields(out, want string) bool {
	w := strings.Join(strings.Fields(want), " ")
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(strings.Join(strings.Fields(l), " "), w) {
			return true
		}
	}
	return false
}

// TestPolicyForOthers runs busctl as user nobody against a bus with the shipped policy:
// GetStatus is allowed, the methods that change something and introspection are not.
func TestPolicyForOthers(t *testing.T) {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil || !isRoot() {
		t.Skip("SKIPPING: needs root and setpriv to call as another user")
	}
	addr := bus(t)
	serve(t, addr, newFakeEngine())
	busctlPath, err := exec.LookPath("busctl")
	if err != nil {
		t.Skip("SKIPPING: busctl (systemd) is not installed")
	}
	asNobody := func(args ...string) (string, error) {
		cmd := exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", busctlPath, "--address=" + addr}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	tests := []struct {
		name  string
		args  []string
		allow bool
	}{
		{"GetStatus", []string{"call", Name, string(Path), Interface, "GetStatus"}, true},
		{"AttemptUpdate", []string{"call", Name, string(Path), Interface, "AttemptUpdate"}, false},
		{"ResetStatus", []string{"call", Name, string(Path), Interface, "ResetStatus"}, false},
		{"Introspect", []string{"call", Name, string(Path), "org.freedesktop.DBus.Introspectable", "Introspect"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := asNobody(tt.args...)
			switch {
			case tt.allow && err != nil:
				t.Errorf("nobody was refused: %v\n%s", err, out)
			case !tt.allow && err == nil:
				t.Errorf("nobody was allowed: %s", out)
			case !tt.allow && !strings.Contains(out, "denied") && !strings.Contains(out, "Access"):
				t.Errorf("refused for another reason than the policy: %s", out)
			}
		})
	}
}

// TestNameTakenAndReleased: a second service on the bus is refused with ErrNameTaken, and
// the name is free again once Serve returns.
func TestNameTakenAndReleased(t *testing.T) {
	addr := bus(t)
	first, cancel := context.WithCancel(context.Background())
	conn, err := Connect(first, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	second := connect(t, addr)
	served := make(chan error, 1)
	// Own the name through the first Serve, then try again on the second connection.
	serveCtx, stop := context.WithCancel(t.Context())
	go func() { served <- Serve(serveCtx, conn, newFakeEngine(), nil, nil) }()
	var has bool
	for !has {
		// NameHasOwner is asked again only after a NameOwnerChanged signal.
		if err := second.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, Name).Store(&has); err != nil {
			t.Fatal(err)
		}
		if !has {
			waitOwnerChange(t, second)
		}
	}
	if err := Serve(t.Context(), second, newFakeEngine(), nil, nil); !errors.Is(err, ErrNameTaken) {
		t.Errorf("second Serve = %v, want ErrNameTaken", err)
	}
	stop()
	if err := <-served; err != nil {
		t.Errorf("Serve after cancel = %v", err)
	}
	if err := second.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, Name).Store(&has); err != nil || has {
		t.Errorf("after Serve returned: NameHasOwner = %v, %v", has, err)
	}
	cancel()
}

// waitOwnerChange blocks until the bus announces a new owner of Name.
func waitOwnerChange(t *testing.T, c *dbus.Conn) {
	t.Helper()
	ch := make(chan *dbus.Signal, 4)
	c.Signal(ch)
	defer c.RemoveSignal(ch)
	opts := []dbus.MatchOption{dbus.WithMatchSender("org.freedesktop.DBus"), dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, Name)}
	if err := c.AddMatchSignal(opts...); err != nil {
		t.Fatal(err)
	}
	defer c.RemoveMatchSignal(opts...)
	var has bool
	if err := c.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, Name).Store(&has); err != nil || has {
		return
	}
	select {
	case <-ch:
	case <-t.Context().Done():
	}
}

// TestConnectWithoutBus: a missing bus is an error the daemon can log and live with.
func TestConnectWithoutBus(t *testing.T) {
	if _, err := Connect(t.Context(), "unix:path="+t.TempDir()+"/none"); err == nil {
		t.Fatal("Connect to a missing bus succeeded")
	}
}

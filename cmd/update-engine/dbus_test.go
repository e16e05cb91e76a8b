package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/switchyard-os/switchyard/sdnotify/sdnotifytest"
	"github.com/switchyard-os/switchyard/update-engine/dbusapi"
	"github.com/switchyard-os/switchyard/update-engine/dbusapi/dbustest"
	"github.com/switchyard-os/switchyard/update-engine/engine"
)

// TestDaemonDBus runs update-engine with DBUS set to a private bus carrying the shipped
// policy and drives it as Flatcar's tools do: locksmithd's StatusUpdate match and GetStatus,
// update_engine_client's AttemptUpdate; the update is applied and UPDATED_NEED_REBOOT is
// signalled, and busctl reads the same status. When the daemon stops, the name is free.
func TestDaemonDBus(t *testing.T) {
	addr := dbustest.MustStart(t, "../../packaging/dbus/com.coreos.update1.conf")
	w := newWorld(t, worldOptions{})
	conf := w.conf(fromVersion, "USR-A", "FIRST_CHECK_DELAY=1h", "FIRST_CHECK_FUZZ=0s", "DBUS="+addr)

	client, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	signals := make(chan *dbus.Signal, 256)
	client.Signal(signals)
	for _, match := range [][]dbus.MatchOption{
		{dbus.WithMatchSender("org.freedesktop.DBus"), dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, dbusapi.Name)},
		{dbus.WithMatchInterface(dbusapi.Interface), dbus.WithMatchMember("StatusUpdate"), dbus.WithMatchObjectPath(dbusapi.Path)},
	} {
		if err := client.AddMatchSignal(match...); err != nil {
			t.Fatal(err)
		}
	}
	next := func(name string) *dbus.Signal {
		t.Helper()
		for {
			select {
			case s := <-signals:
				if s.Name == name {
					return s
				}
			case <-time.After(30 * time.Second): // a bound on failure, not a wait for success
				t.Fatalf("no %s within 30s", name)
			}
		}
	}

	notified := sdnotifytest.Listen(t, 0)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := w.engine(ctx, conf)
		done <- err
	}()
	// READY=1 comes only once the name is owned: a locksmithd started after the unit is
	// ready finds the service.
	if got := notified(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	var owned bool
	if err := client.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, dbusapi.Name).Store(&owned); err != nil || !owned {
		t.Fatalf("at READY=1 %s has no owner (%v)", dbusapi.Name, err)
	}
	defer func() {
		cancel()
		<-done
	}()
	if s := next("org.freedesktop.DBus.NameOwnerChanged"); len(s.Body) != 3 || s.Body[2] == "" {
		t.Fatalf("NameOwnerChanged %v", s.Body)
	}
	obj := client.Object(dbusapi.Name, dbusapi.Path)
	var st dbusapi.Status
	if err := obj.Call(dbusapi.Interface+".GetStatus", 0).Store(&st.LastCheckedTime, &st.Progress, &st.CurrentOperation, &st.NewVersion, &st.NewSize); err != nil {
		t.Fatal(err)
	}
	if st.CurrentOperation != string(engine.StatusIdle) || st.NewVersion != dbusapi.NoVersion {
		t.Errorf("GetStatus at start = %+v", st)
	}
	if err := obj.Call(dbusapi.Interface+".AttemptUpdate", 0).Err; err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for st.CurrentOperation != string(engine.StatusUpdatedNeedReboot) {
		s := next(dbusapi.StatusSignal)
		if err := dbus.Store(s.Body, &st.LastCheckedTime, &st.Progress, &st.CurrentOperation, &st.NewVersion, &st.NewSize); err != nil {
			t.Fatal(err)
		}
		seen[st.CurrentOperation] = true
		if st.CurrentOperation == string(engine.StatusIdle) {
			t.Fatalf("the update failed: %+v", st)
		}
	}
	if !seen[string(engine.StatusDownloading)] || st.NewVersion != toVersion || st.Progress != 1 || st.LastCheckedTime == 0 {
		t.Errorf("signals saw %v, last %+v", seen, st)
	}

	// busctl, the independent judge, reads the same.
	if busctl, err := exec.LookPath("busctl"); err == nil {
		out, err := exec.Command(busctl, "--address="+addr, "--json=short", "call", dbusapi.Name, string(dbusapi.Path), dbusapi.Interface, "GetStatus").Output()
		if err != nil {
			t.Fatalf("busctl GetStatus: %v", err)
		}
		var reply struct{ Data []any }
		if err := json.Unmarshal(out, &reply); err != nil || len(reply.Data) != 5 || reply.Data[2] != string(engine.StatusUpdatedNeedReboot) || reply.Data[3] != toVersion {
			t.Errorf("busctl GetStatus = %s (%v)", out, err)
		}
	} else {
		t.Log("busctl not installed: GetStatus judged by godbus only")
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("daemon exit: %v", err)
	}
	done <- nil // for the deferred receive
	var has bool
	if err := client.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, dbusapi.Name).Store(&has); err != nil || has {
		t.Errorf("after the daemon stopped: NameHasOwner = %v, %v", has, err)
	}
}

// TestDBusMissingBus: an unreachable bus is a warning and the D-Bus part returns nil, so
// the daemon goes on (serve collects that nil only when it stops).
func TestDBusMissingBus(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	missing := "unix:path=" + filepath.Join(t.TempDir(), "no-bus")
	settled := false
	if err := serveDBus(t.Context(), missing, nil, log, func() { settled = true }); err != nil {
		t.Fatalf("serveDBus with no bus = %v, want nil", err)
	}
	if !settled {
		t.Error("serveDBus with no bus never said it settled: READY=1 would wait forever")
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "no-bus") {
		t.Errorf("no warning naming the bus: %s", logs.String())
	}
}

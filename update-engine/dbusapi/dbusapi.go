package dbusapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"

	"github.com/switchyard-os/switchyard/update-engine/engine"
)

// The names of Flatcar's interface.
const (
	Name         = "com.coreos.update1"
	Path         = dbus.ObjectPath("/com/coreos/update1")
	Interface    = "com.coreos.update1.Manager"
	StatusSignal = Interface + ".StatusUpdate"
)

// SystemBus is the value of the bus setting that means the system bus, and SystemBusAddress
// its well-known address (the D-Bus specification's; DBUS_SYSTEM_BUS_ADDRESS is not read).
const (
	SystemBus        = "system"
	SystemBusAddress = "unix:path=/run/dbus/system_bus_socket"
)

// NoVersion is Flatcar's new_version when no update is known.
const NoVersion = "0.0.0.0"

// ErrNameTaken is returned by Serve when another connection owns com.coreos.update1.
var ErrNameTaken = errors.New("dbusapi: " + Name + " is owned by another connection")

// Engine is what the service drives: engine.Engine.
type Engine interface {
	Snapshot() engine.Snapshot
	Wait(ctx context.Context, after uint64) (engine.Snapshot, error)
	CheckNow() error
	ResetStatus(ctx context.Context) error
}

// Status is the five-field tuple of GetStatus and StatusUpdate, in wire order.
type Status struct {
	LastCheckedTime  int64
	Progress         float64
	CurrentOperation string
	NewVersion       string
	NewSize          int64
}

// StatusOf maps a snapshot to Flatcar's tuple (see the package doc).
func StatusOf(s engine.Snapshot) Status {
	st := Status{Progress: s.Progress, CurrentOperation: string(s.Status), NewVersion: s.NewVersion, NewSize: s.NewSize}
	if !s.LastChecked.IsZero() {
		st.LastCheckedTime = s.LastChecked.Unix()
	}
	if st.NewVersion == "" {
		st.NewVersion = NoVersion
	}
	return st
}

func (s Status) values() []any {
	return []any{s.LastCheckedTime, s.Progress, s.CurrentOperation, s.NewVersion, s.NewSize}
}

// Connect connects to the bus named by address: SystemBus or a D-Bus address
// ("unix:path=/run/dbus/system_bus_socket"). The connection closes when ctx ends.
func Connect(ctx context.Context, address string) (*dbus.Conn, error) {
	if address == SystemBus {
		address = SystemBusAddress
	}
	conn, err := dbus.Connect(address, dbus.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("dbusapi: connecting to %s: %w", address, err)
	}
	return conn, nil
}

// introspection describes the object as Flatcar's update_engine.xml does.
func introspection() *introspect.Node {
	fields := func(dir string) []introspect.Arg {
		return []introspect.Arg{
			{Name: "last_checked_time", Type: "x", Direction: dir},
			{Name: "progress", Type: "d", Direction: dir},
			{Name: "current_operation", Type: "s", Direction: dir},
			{Name: "new_version", Type: "s", Direction: dir},
			{Name: "new_size", Type: "x", Direction: dir},
		}
	}
	return &introspect.Node{
		Name: string(Path),
		Interfaces: []introspect.Interface{
			introspect.IntrospectData,
			{
				Name: Interface,
				Methods: []introspect.Method{
					{Name: "AttemptUpdate"},
					{Name: "ResetStatus"},
					{Name: "GetStatus", Args: fields("out")},
				},
				Signals: []introspect.Signal{{Name: "StatusUpdate", Args: fields("")}},
			},
		},
	}
}

// manager is the exported object; godbus calls its methods from its own goroutines.
type manager struct {
	ctx context.Context // Serve's: ends the engine calls when the daemon stops
	eng Engine
	log *slog.Logger

	mu     sync.Mutex
	closed bool
	calls  sync.WaitGroup
}

// enter counts a call in flight; false once Serve is returning.
func (m *manager) enter() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.calls.Add(1)
	return true
}

// close refuses new calls and waits for those in flight.
func (m *manager) close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.calls.Wait()
}

var errStopping = dbus.MakeFailedError(errors.New("dbusapi: update-engine is stopping"))

func (m *manager) AttemptUpdate() *dbus.Error {
	if !m.enter() {
		return errStopping
	}
	defer m.calls.Done()
	m.log.Info("D-Bus request", "method", "AttemptUpdate")
	switch err := m.eng.CheckNow(); {
	case errors.Is(err, engine.ErrBusy):
		// Flatcar's AttemptUpdate skips the check while an update runs and succeeds.
		m.log.Info("AttemptUpdate ignored: an update is in progress")
	case err != nil:
		return dbus.MakeFailedError(fmt.Errorf("dbusapi: AttemptUpdate: %w", err))
	}
	return nil
}

func (m *manager) ResetStatus() *dbus.Error {
	if !m.enter() {
		return errStopping
	}
	defer m.calls.Done()
	m.log.Info("D-Bus request", "method", "ResetStatus")
	if err := m.eng.ResetStatus(m.ctx); err != nil {
		return dbus.MakeFailedError(fmt.Errorf("dbusapi: ResetStatus: %w", err))
	}
	return nil
}

func (m *manager) GetStatus() (lastChecked int64, progress float64, op, newVersion string, newSize int64, derr *dbus.Error) {
	if !m.enter() {
		return 0, 0, "", "", 0, errStopping
	}
	defer m.calls.Done()
	s := StatusOf(m.eng.Snapshot())
	return s.LastCheckedTime, s.Progress, s.CurrentOperation, s.NewVersion, s.NewSize, nil
}

// Serve owns com.coreos.update1 on conn and serves eng until ctx ends (see the package
// doc). owned, when set, is called once the name is owned and the object answers (a
// daemon tells systemd it is ready then). It returns nil when ctx ends, ErrNameTaken when
// the name is owned by another connection, or an error when the bus refuses the name or
// the connection breaks.
func Serve(ctx context.Context, conn *dbus.Conn, eng Engine, log *slog.Logger, owned func()) (err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &manager{ctx: ctx, eng: eng, log: log}
	if err := conn.Export(m, Path, Interface); err != nil {
		return fmt.Errorf("dbusapi: exporting %s: %w", Path, err)
	}
	defer m.close()
	defer conn.Export(nil, Path, Interface)
	const introspectable = "org.freedesktop.DBus.Introspectable"
	if err := conn.Export(introspect.NewIntrospectable(introspection()), Path, introspectable); err != nil {
		return fmt.Errorf("dbusapi: exporting %s: %w", Path, err)
	}
	defer conn.Export(nil, Path, introspectable)

	reply, err := conn.RequestName(Name, dbus.NameFlagDoNotQueue)
	if err != nil {
		return fmt.Errorf("dbusapi: requesting %s: %w", Name, err)
	}
	if reply != dbus.RequestNameReplyPrimaryOwner && reply != dbus.RequestNameReplyAlreadyOwner {
		return ErrNameTaken
	}
	defer func() {
		if _, rerr := conn.ReleaseName(Name); rerr != nil && conn.Connected() && err == nil {
			err = fmt.Errorf("dbusapi: releasing %s: %w", Name, rerr)
		}
	}()
	log.Info("D-Bus service started", "name", Name)
	if owned != nil {
		owned()
	}

	// Follow the engine until ctx ends or the bus connection breaks.
	wctx, cancel := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-conn.Context().Done():
			cancel()
		case <-wctx.Done():
		}
	}()
	defer func() {
		cancel()
		<-watched
	}()
	snap := eng.Snapshot()
	last := StatusOf(snap)
	for {
		s, err := eng.Wait(wctx, snap.Seq)
		switch {
		case ctx.Err() != nil:
			return nil
		case wctx.Err() != nil:
			return errors.New("dbusapi: the bus connection closed")
		case err != nil:
			return fmt.Errorf("dbusapi: following the engine: %w", err)
		}
		snap = s
		st := StatusOf(s)
		if st == last {
			continue
		}
		if err := conn.Emit(Path, StatusSignal, st.values()...); err != nil {
			if !conn.Connected() {
				return fmt.Errorf("dbusapi: emitting StatusUpdate: %w", err)
			}
			log.Warn("emitting StatusUpdate", "err", err)
		}
		last = st
	}
}

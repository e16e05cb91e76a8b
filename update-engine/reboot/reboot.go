// Package reboot adapts rebootlock's strategy coordinator to the engine: Reboot waits for
// the reboot window and the fleet lock (etcd-lock, fleetlock), then reboots; Release gives
// the lock slot back once the new partition has been marked good or a rollback recorded
// (DESIGN.md section 9: the slot is held across the reboot).
//
// Windows come from REBOOT_WINDOWS (several, "Mon,Tue 02:00 1h [Zone]") and from Flatcar's
// LOCKSMITHD_REBOOT_WINDOW_START/LENGTH (evaluated in local time, as locksmithd does); both
// may be given and the union is used. Under the "off" strategy Reboot returns at once and the
// host waits for a person (UPDATED_NEED_REBOOT stays visible in updatectl status).
package reboot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchyard-os/switchyard/rebootlock/strategy"
	"github.com/switchyard-os/switchyard/rebootlock/window"
)

// Options configure a Manager.
type Options struct {
	Strategy string
	// Windows are REBOOT_WINDOWS entries.
	Windows []string
	// FlatcarStart and FlatcarLength are LOCKSMITHD_REBOOT_WINDOW_START and _LENGTH.
	FlatcarStart  string
	FlatcarLength time.Duration
	// Zone evaluates the Flatcar window; nil means time.Local.
	Zone *time.Location
	// Lock is the fleet lock for etcd-lock and fleetlock; nil otherwise.
	Lock     strategy.Locker
	Rebooter strategy.Rebooter
	Log      *slog.Logger
	Clock    strategy.Clock
}

// Manager implements engine.Rebooter.
type Manager struct {
	c    *strategy.Coordinator
	lock strategy.Locker
	log  *slog.Logger
}

// Schedule parses the windows of o.
func (o Options) Schedule() (window.Schedule, error) {
	var sched window.Schedule
	for _, w := range o.Windows {
		win, err := window.ParseWindow(w)
		if err != nil {
			return nil, fmt.Errorf("reboot: %w", err)
		}
		sched = append(sched, win)
	}
	if o.FlatcarStart != "" {
		zone := o.Zone
		if zone == nil {
			zone = time.Local
		}
		win, err := window.ParseFlatcar(o.FlatcarStart, o.FlatcarLength.String(), zone)
		if err != nil {
			return nil, fmt.Errorf("reboot: %w", err)
		}
		sched = append(sched, win)
	}
	return sched, nil
}

// New checks o and returns a Manager.
func New(o Options) (*Manager, error) {
	s, err := strategy.Parse(o.Strategy)
	if err != nil {
		return nil, fmt.Errorf("reboot: %w", err)
	}
	sched, err := o.Schedule()
	if err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := strategy.New(strategy.Config{Strategy: s, Windows: sched, Lock: o.Lock, Rebooter: o.Rebooter, Logger: log, Clock: o.Clock})
	if err != nil {
		return nil, fmt.Errorf("reboot: %w", err)
	}
	lock := o.Lock
	if s != strategy.EtcdLock && s != strategy.FleetLock {
		lock = nil
	}
	return &Manager{c: c, lock: lock, log: log}, nil
}

// Reboot runs the strategy; under "off" it returns nil at once.
func (m *Manager) Reboot(ctx context.Context) error {
	err := m.c.Reboot(ctx)
	if errors.Is(err, strategy.ErrOff) {
		m.log.Info("reboot strategy is off: reboot by hand to finish the update")
		return nil
	}
	return err
}

// Release gives back the lock slot (idempotent; nothing to do without a lock).
func (m *Manager) Release(ctx context.Context) error {
	if m.lock == nil {
		return nil
	}
	if err := m.lock.Unlock(ctx); err != nil {
		return fmt.Errorf("reboot: releasing the lock: %w", err)
	}
	m.log.Info("reboot lock released")
	return nil
}

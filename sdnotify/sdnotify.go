// Package sdnotify tells systemd how a daemon started by a Type=notify unit is doing, with the
// sd_notify(3) protocol through github.com/coreos/go-systemd/v22/daemon.
//
// Parties: systemd (PID 1) creates a unixgram socket and names it in the daemon's
// NOTIFY_SOCKET; with WatchdogSec= in the unit it also sets WATCHDOG_USEC (and WATCHDOG_PID).
// The daemon (update-engine, omaha-server) sends datagrams of KEY=VALUE lines:
//
//	READY=1     once it serves (its sockets listen); systemd then runs units ordered after it
//	WATCHDOG=1  at half the watchdog interval, and only while the daemon's own health check
//	            passes: a daemon whose main loop is stuck stops sending and systemd restarts it
//	STOPPING=1  when it starts to shut down
//
// Invariants: without NOTIFY_SOCKET every call does nothing and succeeds, so the daemons run
// the same outside systemd (tests, a shell). A health check that fails or does not return
// sends nothing; the check runs in the watchdog's own goroutine, so a check stuck on a lock
// the main loop holds forever lets systemd's watchdog fire, which is what it is for.
//
// The environment is systemd's side of the protocol and is read by go-systemd, not by this
// package's callers: STYLE.md keeps libraries away from environment variables, and this
// package is the one exception, because the variables are the protocol (sd_notify(3)).
// Only cmd/ imports it.
package sdnotify

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends a daemon's state to systemd.
type Notifier struct {
	log      *slog.Logger
	watchdog time.Duration // systemd's WatchdogSec; 0: no watchdog
}

// New reads systemd's notification settings. log receives one line per failed send.
func New(log *slog.Logger) (*Notifier, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return nil, fmt.Errorf("sdnotify: watchdog settings: %w", err)
	}
	return &Notifier{log: log, watchdog: w}, nil
}

// WatchdogInterval is systemd's watchdog timeout (WatchdogSec=), 0 when it watches nothing.
func (n *Notifier) WatchdogInterval() time.Duration { return n.watchdog }

// Ready tells systemd the daemon serves.
func (n *Notifier) Ready() error { return n.send(daemon.SdNotifyReady) }

// Stopping tells systemd the daemon shuts down.
func (n *Notifier) Stopping() error { return n.send(daemon.SdNotifyStopping) }

func (n *Notifier) send(state string) error {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("telling systemd the daemon's state failed", "state", state, "err", err)
		return fmt.Errorf("sdnotify: sending %s: %w", state, err)
	}
	return nil
}

// Watchdog sends WATCHDOG=1 at half the watchdog interval while healthy returns nil, until
// ctx ends. healthy gets a context that ends at the next tick. Without a watchdog it returns
// at once. It returns when ctx ends, so a caller that runs it in a goroutine cancels ctx and
// then waits for it.
func (n *Notifier) Watchdog(ctx context.Context, healthy func(context.Context) error) {
	if n.watchdog <= 0 {
		return
	}
	every := n.watchdog / 2
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, every)
		err := healthy(hctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil && !failing:
			// One line when health is lost and one when it comes back, not one a tick.
			n.log.Error("health check failed: not feeding systemd's watchdog", "err", err, "watchdog", n.watchdog)
			failing = true
			continue
		case err != nil:
			continue
		case failing:
			n.log.Info("health check passes again: feeding systemd's watchdog")
			failing = false
		}
		n.send(daemon.SdNotifyWatchdog) // a failure is logged by send; the next tick tries again
	}
}

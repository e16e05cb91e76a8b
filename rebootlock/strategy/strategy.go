// Package strategy decides when a host with a staged update reboots: it waits for a reboot
// window, takes the fleet's reboot lock, checks the window again, and only then reboots.
//
// # Strategies
//
//	etcd-lock  window, then a slot of the etcd semaphore (rebootlock.Slot), then reboot
//	fleetlock  the same with a FleetLock server's slot (fleetlock.Client)
//	reboot     window, then reboot; no lock
//	off        never reboot (Reboot returns ErrOff)
//	best-effort  etcd-lock when an etcd endpoint is configured, otherwise reboot
//
// An empty strategy name means "reboot", as in Flatcar. best-effort is locksmithd's old
// default (it chose etcd-lock when etcd ran on the host); the daemon decides once at start
// with Resolve which of the two it means, and New accepts only the resolved strategy.
//
// # The sequence, one cycle (Coordinator.Reboot)
//
//	waiting-window --window open--> locking --slot held--> checking
//	checking --window still open--> pre-reboot hook --succeeded--> rebooting
//	checking --window closed------> releasing --> waiting-window
//	pre-reboot hook --failed------> releasing --> backoff --> waiting-window
//	locking  --lock error---------> backoff --> locking (never rebooting)
//
// The pre-reboot hook (Config.PreReboot, e.g. draining a Kubernetes node) runs while the
// slot is held and the window open. When it fails or times out the reboot is postponed: the
// slot is released rather than held through a drain that did not happen, Config.Postponed is
// told, and the cycle starts over after the same jittered backoff a lock error gets.
//
// Invariant: under etcd-lock and fleetlock the Rebooter is called only after Lock returned
// nil in this cycle, whatever etcd or the server does; an error keeps the host waiting
// (with exponential backoff) until its context ends. The slot stays held across the reboot;
// the daemon calls Release once the host has come back healthy. If the Rebooter fails, the
// slot is released and the error returned.
//
// A Coordinator is update-engine's Rebooter (Reboot, Release) as it is; the daemon passes
// no Rebooter at all under "off". Windows come from window.Combine.
package strategy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/switchyard-os/switchyard/rebootlock/window"
)

// Strategy names a reboot strategy.
type Strategy string

// The strategies.
const (
	EtcdLock  Strategy = "etcd-lock"
	FleetLock Strategy = "fleetlock"
	Reboot    Strategy = "reboot"
	Off       Strategy = "off"
	// BestEffort is etcd-lock or reboot; Resolve decides which.
	BestEffort Strategy = "best-effort"
)

// unlockOnStop bounds the one attempt to give the slot back when the daemon stops during
// the pre-reboot hook.
const unlockOnStop = 10 * time.Second

// ErrOff is returned by Reboot under the off strategy.
var ErrOff = errors.New("strategy: reboots are off")

// Parse reads a strategy name (REBOOT_STRATEGY); "" is reboot.
func Parse(name string) (Strategy, error) {
	switch s := Strategy(name); s {
	case "":
		return Reboot, nil
	case EtcdLock, FleetLock, Reboot, Off, BestEffort:
		return s, nil
	}
	return "", fmt.Errorf("strategy: unknown strategy %q (etcd-lock, fleetlock, reboot, off or best-effort)", name)
}

// Resolve returns the strategy s stands for on a host: best-effort becomes etcd-lock when
// etcdConfigured (an etcd endpoint is set), otherwise reboot, as locksmithd did; every
// other strategy is itself.
func Resolve(s Strategy, etcdConfigured bool) Strategy {
	if s != BestEffort {
		return s
	}
	if etcdConfigured {
		return EtcdLock
	}
	return Reboot
}

// Hook is a command run around the reboot (update-engine/hook.Command).
type Hook interface {
	Run(ctx context.Context) error
}

// Locker is the fleet's reboot lock for this host: rebootlock.Slot or fleetlock.Client.
type Locker interface {
	// Lock returns nil once this host holds a slot (waiting while none is free).
	Lock(ctx context.Context) error
	// Unlock releases this host's slot; releasing a slot not held succeeds.
	Unlock(ctx context.Context) error
}

// Rebooter reboots the host.
type Rebooter interface {
	Reboot(ctx context.Context) error
}

// Clock is the time source; the zero Config uses RealClock. It is also update-engine's
// clock (engine.Clock names this type), so the daemon hands one clock to both and tests
// drive both with one fake. Waiting is always a timer, never a polling loop.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer a Clock's user needs.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// RealClock is the system clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// NewTimer returns a real timer.
func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

// Config configures a Coordinator.
type Config struct {
	Strategy Strategy
	// Windows; empty means any time.
	Windows window.Schedule
	// Lock is required for etcd-lock and fleetlock.
	Lock     Locker
	Rebooter Rebooter
	// PreReboot, when set, runs after the lock and the window, right before the Rebooter;
	// its failure postpones the reboot.
	PreReboot Hook
	// Postponed, when set, is called with the hook's error each time the pre-reboot hook
	// postpones the reboot, before the backoff (update-engine shows it in its status).
	Postponed func(error)
	Logger    *slog.Logger
	Clock     Clock
	// MinBackoff and MaxBackoff bound the retry delay after a lock error (1 s and 5 min
	// when zero).
	MinBackoff, MaxBackoff time.Duration
}

// Coordinator runs the reboot sequence of one host.
type Coordinator struct {
	cfg Config
	log *slog.Logger
}

// New checks cfg and returns a Coordinator.
func New(cfg Config) (*Coordinator, error) {
	if _, err := Parse(string(cfg.Strategy)); err != nil {
		return nil, err
	}
	if cfg.Strategy == BestEffort {
		return nil, errors.New("strategy: best-effort must be resolved first (Resolve)")
	}
	if cfg.Strategy == "" {
		cfg.Strategy = Reboot
	}
	if (cfg.Strategy == EtcdLock || cfg.Strategy == FleetLock) && cfg.Lock == nil {
		return nil, fmt.Errorf("strategy: %s needs a lock", cfg.Strategy)
	}
	if cfg.Strategy != Off && cfg.Rebooter == nil {
		return nil, errors.New("strategy: no rebooter")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Minute, cfg.MinBackoff)
	}
	return &Coordinator{cfg: cfg, log: cfg.Logger.With("strategy", string(cfg.Strategy))}, nil
}

func (c *Coordinator) locking() bool {
	return c.cfg.Strategy == EtcdLock || c.cfg.Strategy == FleetLock
}

// Reboot runs one cycle (see the package comment) and returns once the Rebooter was called
// successfully, or with the error that stopped it. It never reboots without the lock under
// etcd-lock and fleetlock.
func (c *Coordinator) Reboot(ctx context.Context) error {
	if c.cfg.Strategy == Off {
		return ErrOff
	}
	delay := c.cfg.MinBackoff // between postponements by the pre-reboot hook
	for {
		if err := c.waitWindow(ctx); err != nil {
			return err
		}
		if c.locking() {
			if err := c.lock(ctx); err != nil {
				return err
			}
			// The lock may have taken long; the window may have closed meanwhile.
			if now := c.cfg.Clock.Now(); !c.cfg.Windows.Contains(now) {
				c.log.Info("reboot window closed while waiting for the lock; releasing it", "next", c.cfg.Windows.Next(now))
				if err := c.unlock(ctx); err != nil {
					return err
				}
				continue
			}
		}
		if c.cfg.PreReboot != nil {
			if herr := c.cfg.PreReboot.Run(ctx); herr != nil {
				if ctx.Err() != nil {
					err := fmt.Errorf("strategy: pre-reboot hook: %w", errors.Join(ctx.Err(), herr))
					if c.locking() {
						// The daemon stops: the slot must not stay held by a host that
						// will not reboot. ctx is done, so this is one best attempt.
						uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockOnStop)
						uerr := c.cfg.Lock.Unlock(uctx)
						cancel()
						if uerr != nil {
							return errors.Join(err, uerr)
						}
					}
					return err
				}
				wait := delay/2 + rand.N(delay/2+1)
				c.log.Warn("pre-reboot hook failed: reboot postponed", "err", herr, "retry_in", wait)
				if c.locking() {
					if err := c.unlock(ctx); err != nil {
						return err
					}
				}
				if c.cfg.Postponed != nil {
					c.cfg.Postponed(herr)
				}
				if err := c.sleep(ctx, wait); err != nil {
					return fmt.Errorf("strategy: reboot postponed by the pre-reboot hook: %w", errors.Join(err, herr))
				}
				delay = min(delay*2, c.cfg.MaxBackoff)
				continue
			}
		}
		c.log.Info("rebooting")
		if err := c.cfg.Rebooter.Reboot(ctx); err != nil {
			err = fmt.Errorf("strategy: reboot: %w", err)
			if c.locking() {
				if uerr := c.unlock(ctx); uerr != nil {
					return errors.Join(err, uerr)
				}
			}
			return err
		}
		return nil
	}
}

// Release gives back the slot held across the reboot, once the host is back and healthy
// (or its rollback recorded). It is idempotent, and does nothing under the strategies
// without a lock. Unlike Reboot it does not retry: the daemon calls it again at its next
// start.
func (c *Coordinator) Release(ctx context.Context) error {
	if !c.locking() {
		return nil
	}
	if err := c.cfg.Lock.Unlock(ctx); err != nil {
		return fmt.Errorf("strategy: releasing the reboot lock: %w", err)
	}
	c.log.Info("reboot lock released")
	return nil
}

// waitWindow returns once the schedule is open.
func (c *Coordinator) waitWindow(ctx context.Context) error {
	for {
		now := c.cfg.Clock.Now()
		if c.cfg.Windows.Contains(now) {
			return nil
		}
		next := c.cfg.Windows.Next(now)
		if next.IsZero() {
			return errors.New("strategy: the reboot windows never open")
		}
		c.log.Info("waiting for the reboot window", "opens", next)
		if err := c.sleep(ctx, next.Sub(now)); err != nil {
			return fmt.Errorf("strategy: waiting for the reboot window: %w", err)
		}
	}
}

// sleep waits d on the clock, or until ctx ends (then it returns ctx.Err()).
func (c *Coordinator) sleep(ctx context.Context, d time.Duration) error {
	t := c.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

// lock takes the lock, retrying errors with jittered exponential backoff until ctx ends.
func (c *Coordinator) lock(ctx context.Context) error {
	return c.retry(ctx, "taking the reboot lock", c.cfg.Lock.Lock)
}

func (c *Coordinator) unlock(ctx context.Context) error {
	return c.retry(ctx, "releasing the reboot lock", c.cfg.Lock.Unlock)
}

func (c *Coordinator) retry(ctx context.Context, what string, f func(context.Context) error) error {
	delay := c.cfg.MinBackoff
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("strategy: %s: %w", what, errors.Join(ctx.Err(), err))
		}
		wait := delay/2 + rand.N(delay/2+1)
		c.log.Warn("reboot lock error; retrying", "op", what, "err", err, "in", wait)
		if serr := c.sleep(ctx, wait); serr != nil {
			return fmt.Errorf("strategy: %s: %w", what, errors.Join(serr, err))
		}
		delay = min(delay*2, c.cfg.MaxBackoff)
	}
}

package engine

import "github.com/switchyard-os/switchyard/rebootlock/strategy"

// Clock is the time source. The daemon uses the real one; tests drive a fake one. Waiting is
// always a timer, never a polling loop. It is the reboot strategy's clock, so one clock
// (and one fake) serves the engine and the strategy.
type Clock = strategy.Clock

// Timer is the part of *time.Timer the engine uses.
type Timer = strategy.Timer

// RealClock is the system clock.
type RealClock = strategy.RealClock

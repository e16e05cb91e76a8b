package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/partitions/slots"
	"github.com/switchyard-os/switchyard/update-engine/state"
)

// fakeClock is a manual clock: timers fire when Advance passes their deadline.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	armed  chan struct{} // receives on every NewTimer
}

func newFakeClock(t time.Time) *fakeClock {
	return &fakeClock{now: t, armed: make(chan struct{}, 100)}
}

type fakeTimer struct {
	c        chan time.Time
	deadline time.Time
	stopped  bool
	clk      *fakeClock
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }
func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	t := &fakeTimer{c: make(chan time.Time, 1), deadline: c.now.Add(d), clk: c}
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	c.armed <- struct{}{}
	return t
}

// waitArmed blocks until a timer has been created since the last call.
func (c *fakeClock) waitArmed(ctx context.Context) error {
	select {
	case <-c.armed:
		return nil
	case <-ctx.Done():
		return errors.New("no timer was armed")
	}
}

// pending returns the live timers' delays from now.
func (c *fakeClock) pending() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Duration
	for _, t := range c.timers {
		if !t.stopped {
			out = append(out, t.deadline.Sub(c.now))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// fireNext moves the clock to the earliest live timer and fires it; it returns the step.
func (c *fakeClock) fireNext() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next *fakeTimer
	for _, t := range c.timers {
		if !t.stopped && (next == nil || t.deadline.Before(next.deadline)) {
			next = t
		}
	}
	if next == nil {
		return 0
	}
	step := next.deadline.Sub(c.now)
	c.now = next.deadline
	next.stopped = true
	next.c <- c.now
	return step
}

// fakeServer records what the engine sends.
type fakeServer struct {
	mu       sync.Mutex
	offer    *omaha.Offer
	full     *omaha.Offer // CheckFull's answer
	checkErr error
	// fullChecks counts CheckFull calls.
	fullChecks int
	checks     int
	onDemand   []bool
	pings      int
	events     []*omaha.Event
}

func (s *fakeServer) Check(ctx context.Context, onDemand bool, evs ...*omaha.Event) (*omaha.Offer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks++
	s.onDemand = append(s.onDemand, onDemand)
	s.events = append(s.events, evs...)
	if s.checkErr != nil {
		return nil, s.checkErr
	}
	return s.offer, nil
}

func (s *fakeServer) CheckFull(ctx context.Context, onDemand bool) (*omaha.Offer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fullChecks++
	if s.checkErr != nil {
		return nil, s.checkErr
	}
	return s.full, nil
}

func (s *fakeServer) Ping(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pings++
	return s.checkErr
}

func (s *fakeServer) Report(_ context.Context, evs ...*omaha.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, evs...)
	return nil
}

// eventStrings renders the events as "type/result[/code][/prev]".
func (s *fakeServer) eventStrings() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.events {
		v := fmt.Sprintf("%d/%d", e.Type, e.Result)
		if e.ErrorCode != nil {
			v += fmt.Sprintf(" code=%d", uint32(*e.ErrorCode))
		}
		if e.PreviousVersion != "" {
			v += " prev=" + e.PreviousVersion
		}
		out = append(out, v)
	}
	return out
}

type fakeTrust struct {
	target Target
	delta  *Target // the delta target, when TUF pins one
	err    error
}

func (t *fakeTrust) Lookup(ctx context.Context, version, board, source string) (Target, error) {
	if source != "" {
		// No filter by source: the engine must refuse a target from another version.
		if t.delta == nil {
			return Target{}, fmt.Errorf("fake TUF: no delta from %q", source)
		}
		return *t.delta, t.err
	}
	return t.target, t.err
}

// fakeBoot is the slot protocol on two partitions, 3 (USR-A) and 4 (USR-B).
type fakeBoot struct {
	mu     sync.Mutex
	active int
	slots  map[int]*slots.Slot
	err    error
}

func newFakeBoot() *fakeBoot {
	return &fakeBoot{active: 3, slots: map[int]*slots.Slot{
		3: {Number: 3, Label: "USR-A", State: slots.State{Priority: 1, Successful: true}},
		4: {Number: 4, Label: "USR-B"},
	}}
}

func (b *fakeBoot) other(n int) int { return 7 - n }

func (b *fakeBoot) Slots(context.Context) (slots.Slot, slots.Slot, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return *b.slots[b.active], *b.slots[b.other(b.active)], nil
}
func (b *fakeBoot) Prepare(_ context.Context, n int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	*b.slots[n] = slots.Slot{Number: n, Label: b.slots[n].Label}
	return nil
}
func (b *fakeBoot) Flip(_ context.Context, n int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.slots[n]
	s.Priority, s.Tries, s.Successful = 2, 1, false
	b.slots[b.other(n)].Priority = 1
	return nil
}
func (b *fakeBoot) MarkGood(_ context.Context, n int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.slots[n]
	s.Successful, s.Tries = true, 0
	return nil
}
func (b *fakeBoot) Rollback(_ context.Context, from int) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o := b.other(from)
	if !b.slots[o].Successful {
		return 0, errors.New("no known-good partition")
	}
	b.slots[o].Priority, b.slots[from].Priority = 2, 1
	return o, nil
}

// boot plays the boot loader: the highest priority with tries or successful wins.
func (b *fakeBoot) boot() {
	b.mu.Lock()
	defer b.mu.Unlock()
	best := 0
	for _, n := range []int{3, 4} {
		s := b.slots[n]
		if s.Priority > 0 && (s.Tries > 0 || s.Successful) && (best == 0 || s.Priority > b.slots[best].Priority) {
			best = n
		}
	}
	if b.slots[best].Tries > 0 {
		b.slots[best].Tries--
	}
	b.active = best
}

func (b *fakeBoot) slot(n int) slots.Slot {
	b.mu.Lock()
	defer b.mu.Unlock()
	return *b.slots[n]
}

// fakeInstaller "writes" size bytes in operations of opSize, honouring Resume, and fails
// with err after failAfter operations when set.
type fakeInstaller struct {
	opSize    int64
	err       error
	failAfter int
	written   int64
	started   []int // the operation each call started from
}

func (f *fakeInstaller) Install(ctx context.Context, job *Job) error {
	total := job.Target.Length
	op := 0
	if job.Resume != nil {
		op = job.Resume.NextOperation
	}
	f.started = append(f.started, op)
	for off := int64(op) * f.opSize; off < total; off += f.opSize {
		if f.err != nil && op == f.failAfter {
			return f.err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(f.opSize, total-off)
		f.written += n
		op++
		job.Progress(off+n, total)
		if err := job.Checkpoint(state.Resume{NextOperation: op, Offset: off + n}); err != nil {
			return err
		}
	}
	job.Verifying()
	return nil
}

type fakeHealth struct{ err error }

func (h fakeHealth) Run(context.Context) error { return h.err }

package slots

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/switchyard-os/switchyard/partitions/gpt"
)

// USRType returns the type GUID of Flatcar/CoreOS usr partitions, the only A/B slots:
// 5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6, here in its on-disk byte order (gpt.GUID).
func USRType() gpt.GUID {
	return gpt.GUID{0xf4, 0xf5, 0xfb, 0x5d, 0x48, 0x28, 0xac, 0x4b, 0xaa, 0x5e, 0x0d, 0x9a, 0x20, 0xb7, 0x45, 0xa6}
}

// Bit positions and limits (cgptlib_internal.h, coreos/grub gpt_partition.h).
const (
	PriorityShift   = 48
	TriesShift      = 52
	SuccessfulShift = 56
	MaxPriority     = 15
	MaxTries        = 15
	// Mask covers every bit this package may change: 48–56.
	Mask uint64 = 0x1FF << PriorityShift
)

var (
	// ErrNotUSR: the partition is not of type USRType.
	ErrNotUSR = errors.New("slots: partition is not a USR partition")
	// ErrNoBootable: no slot has priority > 0 with tries > 0 or successful.
	ErrNoBootable = errors.New("slots: no bootable USR partition")
	// ErrWouldBrick: the change would leave nothing bootable.
	ErrWouldBrick = errors.New("slots: refusing a change that leaves nothing bootable")
	// ErrNoFallback: no other slot is known good (successful with priority > 0).
	ErrNoFallback = errors.New("slots: no other known-good USR partition")
	// ErrRange: a priority or tries value is outside 0–15.
	ErrRange = errors.New("slots: value out of range")
)

// State is the boot state of one slot.
type State struct {
	Priority   int  `json:"priority"`
	Tries      int  `json:"tries"`
	Successful bool `json:"successful"`
}

// Decode extracts the state from 64 attribute bits.
func Decode(attrs uint64) State {
	return State{
		Priority:   int(attrs >> PriorityShift & 0xF),
		Tries:      int(attrs >> TriesShift & 0xF),
		Successful: attrs>>SuccessfulShift&1 == 1,
	}
}

// Encode returns attrs with bits 48–56 replaced by s; every other bit is kept.
func (s State) Encode(attrs uint64) uint64 {
	v := uint64(s.Priority)<<PriorityShift | uint64(s.Tries)<<TriesShift
	if s.Successful {
		v |= 1 << SuccessfulShift
	}
	return attrs&^Mask | v
}

func (s State) valid() error {
	if s.Priority < 0 || s.Priority > MaxPriority || s.Tries < 0 || s.Tries > MaxTries {
		return fmt.Errorf("%w: priority %d, tries %d (each 0–15)", ErrRange, s.Priority, s.Tries)
	}
	return nil
}

// knownGood reports whether the slot can be a fallback.
func (s State) knownGood() bool { return s.Priority > 0 && s.Successful }

func (s State) String() string {
	succ := 0
	if s.Successful {
		succ = 1
	}
	return fmt.Sprintf("priority %d, tries %d, successful %d", s.Priority, s.Tries, succ)
}

// Slot is one USR partition and its state.
type Slot struct {
	Number int      `json:"number"`
	Label  string   `json:"label"`
	ID     gpt.GUID `json:"-"`
	State
}

// List returns the USR partitions of t in table order.
func List(t *gpt.Table) []Slot {
	var out []Slot
	usr := USRType()
	for _, e := range t.Entries() {
		if e.Type == usr {
			out = append(out, Slot{Number: e.Number, Label: e.Name, ID: e.ID, State: Decode(e.Attributes)})
		}
	}
	return out
}

// Get returns slot n; ErrNotUSR if partition n is not USR-typed.
func Get(t *gpt.Table, n int) (Slot, error) {
	e, err := t.Entry(n)
	if err != nil {
		return Slot{}, fmt.Errorf("slots: %w", err)
	}
	if e.Type != USRType() {
		return Slot{}, fmt.Errorf("%w: partition %d (%q) has type %s", ErrNotUSR, n, e.Name, e.Type)
	}
	return Slot{Number: n, Label: e.Name, ID: e.ID, State: Decode(e.Attributes)}, nil
}

// Peek returns the slot gptprio.next would choose, without using a try.
func Peek(t *gpt.Table) (Slot, error) {
	var best Slot
	found := false
	for _, s := range List(t) {
		// Strict > : priority 0 never wins, ties go to the lower number.
		if (s.Tries > 0 || s.Successful) && s.Priority > best.Priority {
			best, found = s, true
		}
	}
	if !found {
		return Slot{}, ErrNoBootable
	}
	return best, nil
}

// Next is gptprio.next: it chooses like Peek and, when the chosen slot has tries left, uses
// one. It returns the chosen slot as it was before the try was used.
func Next(t *gpt.Table) (Slot, error) {
	s, err := Peek(t)
	if err != nil {
		return Slot{}, err
	}
	if s.Tries > 0 {
		ns := s.State
		ns.Tries--
		if err := set(t, s.Number, ns); err != nil {
			return Slot{}, err
		}
	}
	return s, nil
}

// set writes a state into the table, no checks beyond the range.
func set(t *gpt.Table, n int, s State) error {
	if err := s.valid(); err != nil {
		return err
	}
	e, err := t.Entry(n)
	if err != nil {
		return fmt.Errorf("slots: %w", err)
	}
	return t.SetAttributes(n, s.Encode(e.Attributes))
}

// change runs fn on t and keeps the result only when something is still bootable.
func change(t *gpt.Table, fn func() error) error {
	saved := map[int]uint64{}
	for _, e := range t.Entries() {
		saved[e.Number] = e.Attributes
	}
	restore := func() {
		for n, a := range saved {
			_ = t.SetAttributes(n, a)
		}
	}
	if err := fn(); err != nil {
		restore()
		return err
	}
	if _, err := Peek(t); err != nil {
		restore()
		return ErrWouldBrick
	}
	return nil
}

// Set sets slot n to s, absolutely.
func Set(t *gpt.Table, n int, s State) error {
	if _, err := Get(t, n); err != nil {
		return err
	}
	return change(t, func() error { return set(t, n, s) })
}

// otherGood returns a known-good slot other than n.
func otherGood(t *gpt.Table, n int) (Slot, error) {
	for _, s := range List(t) {
		if s.Number != n && s.knownGood() {
			return s, nil
		}
	}
	return Slot{}, fmt.Errorf("%w than partition %d", ErrNoFallback, n)
}

// Prepare makes slot n unbootable (0/0/0) before a payload is written to it. Another slot
// must be known good.
func Prepare(t *gpt.Table, n int) error {
	if _, err := Get(t, n); err != nil {
		return err
	}
	if _, err := otherGood(t, n); err != nil {
		return err
	}
	return change(t, func() error { return set(t, n, State{}) })
}

// Flip makes slot n boot next, once: tries 1, successful 0, a priority above every other
// slot. Another slot must be known good, to fall back to.
func Flip(t *gpt.Table, n int) error {
	cur, err := Get(t, n)
	if err != nil {
		return err
	}
	if _, err := otherGood(t, n); err != nil {
		return err
	}
	return change(t, func() error {
		if err := set(t, n, State{Priority: cur.Priority, Tries: 1}); err != nil {
			return err
		}
		return prioritize(t, n, 0)
	})
}

// MarkGood marks slot n successful with no tries left and keeps it on top.
func MarkGood(t *gpt.Table, n int) error {
	cur, err := Get(t, n)
	if err != nil {
		return err
	}
	return change(t, func() error {
		if err := set(t, n, State{Priority: cur.Priority, Successful: true}); err != nil {
			return err
		}
		return prioritize(t, n, 0)
	})
}

// Rollback makes the known-good slot other than from boot next and returns its number.
func Rollback(t *gpt.Table, from int) (int, error) {
	if _, err := Get(t, from); err != nil {
		return 0, err
	}
	good, err := otherGood(t, from)
	if err != nil {
		return 0, err
	}
	err = change(t, func() error {
		if err := set(t, good.Number, State{Priority: good.Priority, Successful: true}); err != nil {
			return err
		}
		return prioritize(t, good.Number, 0)
	})
	return good.Number, err
}

// Prioritize is cgpt's prioritize for USR partitions: slot n alone on top, the other slots
// renumbered by their current rank below it starting from max (0: the number of priority
// groups, at most 15), nothing lowered to 0.
func Prioritize(t *gpt.Table, n, max int) error {
	if _, err := Get(t, n); err != nil {
		return err
	}
	if max < 0 || max > MaxPriority {
		return fmt.Errorf("%w: maximum priority %d", ErrRange, max)
	}
	return change(t, func() error { return prioritize(t, n, max) })
}

// prioritize follows cgpt_prioritize.c: group by priority, the chosen slot in a group of its
// own above all, sort the groups descending, drop a trailing priority-0 group, then assign
// max, max-1, … (never below 1).
func prioritize(t *gpt.Table, n, max int) error {
	type group struct {
		key   int
		parts []Slot
	}
	groups := map[int]*group{}
	for _, s := range List(t) {
		key := s.Priority
		if s.Number == n {
			key = 99
		}
		if groups[key] == nil {
			groups[key] = &group{key: key}
		}
		groups[key].parts = append(groups[key].parts, s)
	}
	var order []*group
	for _, g := range groups {
		order = append(order, g)
	}
	sort.Slice(order, func(i, j int) bool { return order[i].key > order[j].key })
	if len(order) > 0 && order[len(order)-1].key == 0 {
		order = order[:len(order)-1]
	}
	prio := max
	if prio == 0 {
		prio = min(len(order), MaxPriority)
	}
	for _, g := range order {
		for _, s := range g.parts {
			ns := s.State
			ns.Priority = prio
			if err := set(t, s.Number, ns); err != nil {
				return err
			}
		}
		if prio > 1 {
			prio--
		}
	}
	return nil
}

// Device is what Apply needs: gpt.Device plus the disk geometry.
type Device interface {
	gpt.Device
	Size() int64
	SectorSize() int
}

// Apply reads the table on dev, runs op on it and writes the result crash-safely (repairing
// a bad copy first, see gpt.Table.Write). When reading or op fails, nothing is written; when
// op changes nothing on a clean table, nothing is written either.
func Apply(ctx context.Context, dev Device, op func(*gpt.Table) error) (*gpt.Table, error) {
	t, err := gpt.Read(ctx, dev, dev.Size(), dev.SectorSize())
	if err != nil {
		return nil, err
	}
	if err := op(t); err != nil {
		return t, err
	}
	if err := t.Write(ctx, dev); err != nil {
		return t, err
	}
	return t, nil
}

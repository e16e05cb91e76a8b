package slots_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/switchyard-os/switchyard/partitions/blockdev"
	"github.com/switchyard-os/switchyard/partitions/gpt"
	"github.com/switchyard-os/switchyard/partitions/gpttest"
	"github.com/switchyard-os/switchyard/partitions/layout"
	"github.com/switchyard-os/switchyard/partitions/slots"
)

const (
	a = layout.NumUSRA
	b = layout.NumUSRB
)

// image builds a fresh Flatcar-layout disk in memory: USR-A 1/0/1, USR-B 0/0/0.
func image(t testing.TB, ss int) *gpttest.Mem {
	t.Helper()
	specs, sectors, err := layout.Plan(layout.Options{SectorSize: ss})
	if err != nil {
		t.Fatal(err)
	}
	_ = specs
	m := &gpttest.Mem{B: make([]byte, int(sectors)*ss), SectorSz: ss}
	if _, _, err := layout.Build(context.Background(), m, layout.Options{SectorSize: ss}); err != nil {
		t.Fatal(err)
	}
	return m
}

func table(t testing.TB, m *gpttest.Mem) *gpt.Table {
	t.Helper()
	tab, err := gpt.Read(context.Background(), m, m.Size(), m.SectorSize())
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func st(p, tr int, s bool) slots.State { return slots.State{Priority: p, Tries: tr, Successful: s} }

func state(t testing.TB, tab *gpt.Table, n int) slots.State {
	t.Helper()
	s, err := slots.Get(tab, n)
	if err != nil {
		t.Fatal(err)
	}
	return s.State
}

// TestUSRType checks the byte literal against the canonical text form Flatcar's
// disk_layout.json and cgpt's "coreos-usr" alias use.
func TestUSRType(t *testing.T) {
	const want = "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6"
	if got := slots.USRType(); got != gpt.MustParseGUID(want) || got.String() != want {
		t.Fatalf("USRType() = %s, want %s", got, want)
	}
}

func TestEncodeKeepsOtherBits(t *testing.T) {
	tests := []struct {
		name  string
		attrs uint64
		s     slots.State
		want  uint64
	}{
		{"fresh USR-A", 0, st(1, 0, true), 0x0101 << 48},
		{"flip target", 0, st(2, 1, false), 0x0012 << 48},
		{"cgpt example", 0, st(2, 3, false), 0x0032 << 48},
		{"max", 0, st(15, 15, true), 0x01FF << 48},
		{"other bits kept", 1<<0 | 1<<2 | 1<<47 | 1<<57 | 1<<60 | 1<<63 | 0x01FF<<48, st(0, 0, false), 1<<0 | 1<<2 | 1<<47 | 1<<57 | 1<<60 | 1<<63},
		{"other bits kept on set", 1<<2 | 1<<60, st(3, 2, true), 1<<2 | 1<<60 | 0x0123<<48},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.s.Encode(tc.attrs)
			if got != tc.want {
				t.Fatalf("Encode = %#x, want %#x", got, tc.want)
			}
			if back := slots.Decode(got); back != tc.s {
				t.Fatalf("Decode = %+v, want %+v", back, tc.s)
			}
		})
	}
}

func TestNext(t *testing.T) {
	tests := []struct {
		name     string
		a, b     slots.State
		want     int // 0: ErrNoBootable
		wantA    slots.State
		wantB    slots.State
		consumed bool
	}{
		{"fresh disk boots A", st(1, 0, true), st(0, 0, false), a, st(1, 0, true), st(0, 0, false), false},
		{"flipped to B uses a try", st(1, 0, true), st(2, 1, false), b, st(1, 0, true), st(2, 0, false), true},
		{"B out of tries falls back to A", st(1, 0, true), st(2, 0, false), a, st(1, 0, true), st(2, 0, false), false},
		{"tie goes to the lower number", st(2, 0, true), st(2, 0, true), a, st(2, 0, true), st(2, 0, true), false},
		{"tie with tries goes to the lower number", st(2, 3, false), st(2, 1, false), a, st(2, 2, false), st(2, 1, false), true},
		{"priority 0 never boots", st(0, 5, true), st(1, 0, true), b, st(0, 5, true), st(1, 0, true), false},
		{"successful B kept", st(1, 0, true), st(2, 0, true), b, st(1, 0, true), st(2, 0, true), false},
		{"nothing bootable", st(0, 0, true), st(3, 0, false), 0, st(0, 0, true), st(3, 0, false), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := image(t, 512)
			tab := table(t, m)
			for n, s := range map[int]slots.State{a: tc.a, b: tc.b} {
				e, _ := tab.Entry(n)
				if err := tab.SetAttributes(n, s.Encode(e.Attributes)); err != nil {
					t.Fatal(err)
				}
			}
			if err := tab.Write(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			got, err := slots.Next(tab)
			if tc.want == 0 {
				if !errors.Is(err, slots.ErrNoBootable) {
					t.Fatalf("Next = %v, %v; want ErrNoBootable", got, err)
				}
				return
			}
			if err != nil || got.Number != tc.want {
				t.Fatalf("Next = %d, %v; want %d", got.Number, err, tc.want)
			}
			if sa, sb := state(t, tab, a), state(t, tab, b); sa != tc.wantA || sb != tc.wantB {
				t.Fatalf("after Next: A %v, B %v; want A %v, B %v", sa, sb, tc.wantA, tc.wantB)
			}
			if tab.Dirty() != tc.consumed {
				t.Fatalf("dirty = %v, want %v", tab.Dirty(), tc.consumed)
			}
		})
	}
}

func TestPrioritizeFollowsCgpt(t *testing.T) {
	// Expected values worked through cgpt_prioritize.c by hand.
	tests := []struct {
		name     string
		a, b     int
		choose   int
		max      int
		wantA    int
		wantB    int
		wantErrs error
	}{
		{"B from 0 goes above A", 1, 0, b, 0, 1, 2, nil},
		{"already on top stays", 1, 2, b, 0, 1, 2, nil},
		{"A back on top", 1, 2, a, 0, 2, 1, nil},
		{"equal priorities split", 3, 3, b, 0, 1, 2, nil},
		{"chosen with max", 1, 0, b, 9, 8, 9, nil},
		{"the other at 0 stays 0", 0, 5, b, 0, 0, 1, nil},
		{"max out of range", 1, 0, b, 16, 1, 0, slots.ErrRange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab := table(t, image(t, 512))
			for n, p := range map[int]int{a: tc.a, b: tc.b} {
				e, _ := tab.Entry(n)
				_ = tab.SetAttributes(n, st(p, 0, true).Encode(e.Attributes))
			}
			err := slots.Prioritize(tab, tc.choose, tc.max)
			if !errors.Is(err, tc.wantErrs) {
				t.Fatalf("Prioritize = %v, want %v", err, tc.wantErrs)
			}
			if pa, pb := state(t, tab, a).Priority, state(t, tab, b).Priority; pa != tc.wantA || pb != tc.wantB {
				t.Fatalf("priorities A %d, B %d; want %d, %d", pa, pb, tc.wantA, tc.wantB)
			}
		})
	}
}

// TestUpdateCycle walks one update and one failed update through the operations, checking
// that each is idempotent.
func TestUpdateCycle(t *testing.T) {
	tab := table(t, image(t, 512))
	type step struct {
		name   string
		op     func() error
		wantA  slots.State
		wantB  slots.State
		boots  int
		repeat bool
	}
	steps := []step{
		{"prepare B", func() error { return slots.Prepare(tab, b) }, st(1, 0, true), st(0, 0, false), a, true},
		{"flip to B", func() error { return slots.Flip(tab, b) }, st(1, 0, true), st(2, 1, false), b, true},
		{"boot B", func() error { _, err := slots.Next(tab); return err }, st(1, 0, true), st(2, 0, false), a, false},
		{"mark B good", func() error { return slots.MarkGood(tab, b) }, st(1, 0, true), st(2, 0, true), b, true},
		{"prepare A", func() error { return slots.Prepare(tab, a) }, st(0, 0, false), st(2, 0, true), b, true},
		{"flip to A", func() error { return slots.Flip(tab, a) }, st(2, 1, false), st(1, 0, true), a, true},
		{"boot A", func() error { _, err := slots.Next(tab); return err }, st(2, 0, false), st(1, 0, true), b, false},
		{"A never came up: roll back to B", func() error { _, err := slots.Rollback(tab, a); return err }, st(1, 0, false), st(2, 0, true), b, true},
	}
	for _, s := range steps {
		runs := 1
		if s.repeat {
			runs = 2
		}
		for i := 0; i < runs; i++ {
			if err := s.op(); err != nil {
				t.Fatalf("%s (run %d): %v", s.name, i+1, err)
			}
			if ga, gb := state(t, tab, a), state(t, tab, b); ga != s.wantA || gb != s.wantB {
				t.Fatalf("%s (run %d): A %v, B %v; want A %v, B %v", s.name, i+1, ga, gb, s.wantA, s.wantB)
			}
			if n, err := slots.Peek(tab); err != nil || n.Number != s.boots {
				t.Fatalf("%s: would boot %d (%v), want %d", s.name, n.Number, err, s.boots)
			}
		}
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name string
		set  map[int]slots.State
		op   func(*gpt.Table) error
		want error
	}{
		{"prepare a non-USR partition", nil, func(t *gpt.Table) error { return slots.Prepare(t, layout.NumRoot) }, slots.ErrNotUSR},
		{"flip a non-USR partition", nil, func(t *gpt.Table) error { return slots.Flip(t, layout.NumEFI) }, slots.ErrNotUSR},
		{"mark good a non-USR partition", nil, func(t *gpt.Table) error { return slots.MarkGood(t, layout.NumOEM) }, slots.ErrNotUSR},
		{"set an unused entry", nil, func(t *gpt.Table) error { return slots.Set(t, 5, st(1, 0, true)) }, gpt.ErrNoPartition},
		{"prepare the only good slot", nil, func(t *gpt.Table) error { return slots.Prepare(t, a) }, slots.ErrNoFallback},
		{"flip with no known-good fallback", map[int]slots.State{a: st(1, 1, false)}, func(t *gpt.Table) error { return slots.Flip(t, b) }, slots.ErrNoFallback},
		{"roll back with nothing to roll back to", nil, func(t *gpt.Table) error { _, err := slots.Rollback(t, a); return err }, slots.ErrNoFallback},
		{"set that leaves nothing bootable", nil, func(t *gpt.Table) error { return slots.Set(t, a, st(0, 0, true)) }, slots.ErrWouldBrick},
		{"priority out of range", nil, func(t *gpt.Table) error { return slots.Set(t, b, st(16, 0, true)) }, slots.ErrRange},
		{"tries out of range", nil, func(t *gpt.Table) error { return slots.Set(t, b, st(1, -1, true)) }, slots.ErrRange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := image(t, 512)
			if tc.set != nil {
				tab := table(t, m)
				for n, s := range tc.set {
					e, _ := tab.Entry(n)
					_ = tab.SetAttributes(n, s.Encode(e.Attributes))
				}
				if err := tab.Write(context.Background(), m); err != nil {
					t.Fatal(err)
				}
			}
			before := bytes.Clone(m.B)
			_, err := slots.Apply(context.Background(), m, tc.op)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !bytes.Equal(before, m.B) {
				t.Fatal("a refused operation wrote to the disk")
			}
		})
	}
}

// TestCrashAtEveryWrite stops the disk after the k-th write of a flip (and tears the k+1-th
// write in half), for every k, and checks that the disk then holds a valid GPT that boots
// either the old partition (A) or the new one (B) with exactly the old or the new bits, and
// that re-applying the flip completes it.
func TestCrashAtEveryWrite(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		for _, tear := range []bool{false, true} {
			for _, torn := range []bool{false, true} { // start with a torn primary to crash during repair too
				for k := 0; ; k++ {
					name := fmt.Sprintf("%d/tear=%v/torn-primary=%v/k=%d", ss, tear, torn, k)
					m := image(t, ss)
					if torn {
						m.B[ss+70] ^= 0xff
					}
					prep := func(tb *gpt.Table) error { return slots.Prepare(tb, b) }
					if _, err := slots.Apply(context.Background(), &gpttest.Mem{B: m.B, SectorSz: ss}, prep); err != nil {
						t.Fatalf("%s: prepare: %v", name, err)
					}
					if torn {
						m.B[ss+70] ^= 0xff // prepare repaired it; tear it again
					}
					c := &gpttest.Crashing{Mem: m, Allow: k, Tear: tear}
					dev := struct {
						*gpttest.Crashing
						sized
					}{c, sized{m}}
					_, err := slots.Apply(context.Background(), dev, func(tb *gpt.Table) error { return slots.Flip(tb, b) })
					finished := err == nil
					if !finished && !errors.Is(err, gpttest.ErrCrashed) {
						t.Fatalf("%s: flip: %v", name, err)
					}
					tab, rerr := gpt.Read(context.Background(), m, m.Size(), ss)
					if rerr != nil {
						t.Fatalf("%s: no valid GPT after the crash: %v", name, rerr)
					}
					boots, err := slots.Peek(tab)
					if err != nil {
						t.Fatalf("%s: nothing bootable after the crash", name)
					}
					sa, sb := state(t, tab, a), state(t, tab, b)
					old := sa == st(1, 0, true) && sb == st(0, 0, false) && boots.Number == a
					updated := sa == st(1, 0, true) && sb == st(2, 1, false) && boots.Number == b
					if !old && !updated {
						t.Fatalf("%s: A %v, B %v, boots %d: neither the old nor the new state", name, sa, sb, boots.Number)
					}
					if finished && !updated {
						t.Fatalf("%s: flip returned success but the disk is not flipped", name)
					}
					// Recovery: the same absolute operation completes the flip.
					if _, err := slots.Apply(context.Background(), m, func(tb *gpt.Table) error { return slots.Flip(tb, b) }); err != nil {
						t.Fatalf("%s: re-applying the flip: %v", name, err)
					}
					tab = table(t, m)
					if !tab.Clean() || state(t, tab, b) != st(2, 1, false) {
						t.Fatalf("%s: after re-applying: clean %v, B %v", name, tab.Clean(), state(t, tab, b))
					}
					if finished {
						if k < 4 {
							t.Fatalf("%s: a flip finished with %d writes", name, k)
						}
						break
					}
				}
			}
		}
	}
}

// sized gives a Crashing disk the geometry slots.Apply reads.
type sized struct{ m *gpttest.Mem }

func (s sized) Size() int64     { return s.m.Size() }
func (s sized) SectorSize() int { return s.m.SectorSize() }

// TestImageFileWithJudges runs the cycle on an image file through blockdev, and after every
// step has cgpt read the bits and sgdisk verify the table.
func TestImageFileWithJudges(t *testing.T) {
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := layout.WriteFile(ctx, img, layout.Options{}, nil); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		op     func(*gpt.Table) error
		wantA  [3]int
		wantB  [3]int
		booted int
	}{
		{"fresh", func(*gpt.Table) error { return nil }, [3]int{1, 0, 1}, [3]int{0, 0, 0}, 0},
		{"prepare B", func(t *gpt.Table) error { return slots.Prepare(t, b) }, [3]int{1, 0, 1}, [3]int{0, 0, 0}, 0},
		{"flip", func(t *gpt.Table) error { return slots.Flip(t, b) }, [3]int{1, 0, 1}, [3]int{2, 1, 0}, 0},
		{"boot", func(t *gpt.Table) error { _, err := slots.Next(t); return err }, [3]int{1, 0, 1}, [3]int{2, 0, 0}, 0},
		{"mark good", func(t *gpt.Table) error { return slots.MarkGood(t, b) }, [3]int{1, 0, 1}, [3]int{2, 0, 1}, 0},
	}
	for _, s := range steps {
		d, err := blockdev.Open(ctx, img, blockdev.Options{Write: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = slots.Apply(ctx, d, s.op)
		d.Close()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		gpttest.SgdiskVerify(t, img)
		for n, want := range map[int][3]int{a: s.wantA, b: s.wantB} {
			if p, tr, su := gpttest.CgptState(t, img, n); [3]int{p, tr, su} != want {
				t.Fatalf("%s: cgpt reads partition %d as %d/%d/%d, want %v", s.name, n, p, tr, su, want)
			}
		}
	}
}

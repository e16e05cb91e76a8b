package payload

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
)

// finalOnlyTarget is a partition that fails a read of any byte not yet in its final state.
type finalOnlyTarget struct {
	mu      sync.Mutex
	data    []byte
	final   []bool
	badRead error
}

func (t *finalOnlyTarget) write(off int, p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	copy(t.data[off:], p)
	for i := range p {
		t.final[off+i] = true
	}
}

func (t *finalOnlyTarget) ReadAt(p []byte, off int64) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range p {
		if !t.final[int(off)+i] && t.badRead == nil {
			t.badRead = fmt.Errorf("byte %d read before its operation wrote it", int(off)+i)
		}
	}
	return copy(p, t.data[off:]), nil
}

// TestPrefixHasherReadsOnlyFinalBytes writes operations whose extents are in no particular
// order (and leave a hole no operation writes) and checks that the hasher never reads a
// byte before its last write, and that its hash is the partition's.
func TestPrefixHasherReadsOnlyFinalBytes(t *testing.T) {
	const bs, blocks = 512, 64
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		perm := rng.Perm(blocks)
		hole := perm[len(perm)-1] // never written: final from the start (zeros)
		m := &Manifest{BlockSize: bs, PartitionSize: bs * blocks}
		for i := 0; i < len(perm)-1; {
			n := min(1+rng.IntN(3), len(perm)-1-i)
			var op Operation
			for _, b := range perm[i : i+n] {
				op.Dst = append(op.Dst, Extent{Start: uint64(b), Count: 1})
			}
			m.Operations = append(m.Operations, op)
			i += n
		}
		image := make([]byte, bs*blocks)
		for b := range blocks {
			if b != hole {
				for i := range bs {
					image[b*bs+i] = byte(b + i*7 + 1)
				}
			}
		}
		target := &finalOnlyTarget{data: make([]byte, len(image)), final: make([]bool, len(image))}
		for i := hole * bs; i < (hole+1)*bs; i++ {
			target.final[i] = true
		}
		start := rng.IntN(len(m.Operations))
		for _, op := range m.Operations[:start] { // written by an earlier run
			for _, e := range op.Dst {
				off := int(e.Start) * bs
				target.write(off, image[off:off+bs])
			}
		}
		h := newPrefixHasher(context.Background(), m, target, start)
		for i := start; i < len(m.Operations); i++ {
			for _, e := range m.Operations[i].Dst {
				off := int(e.Start) * bs
				target.write(off, image[off:off+bs])
			}
			h.done(i)
			// Let the hasher catch up with what it may read, so that reading too far
			// shows here rather than depending on scheduling.
			for want := h.final[i+1]; h.hashed.Load() < want; {
				runtime.Gosched()
			}
		}
		sum, err := h.finish()
		if err != nil {
			t.Fatal(err)
		}
		if target.badRead != nil {
			t.Fatalf("seed %d: %v", seed, target.badRead)
		}
		if sum != sha256.Sum256(image) {
			t.Fatalf("seed %d: hash %x, want the image's", seed, sum[:8])
		}
	}
}

// TestPrefixHasherStopsOnCancel checks that a hasher waiting for operations ends when the
// apply is cancelled.
func TestPrefixHasherStopsOnCancel(t *testing.T) {
	m := &Manifest{BlockSize: 512, PartitionSize: 1024, Operations: []Operation{{Dst: []Extent{{0, 2}}}}}
	target := &finalOnlyTarget{data: make([]byte, 1024), final: make([]bool, 1024)}
	ctx, cancel := context.WithCancel(context.Background())
	h := newPrefixHasher(ctx, m, target, 0)
	cancel()
	if r := <-h.result; r.err == nil {
		t.Fatal("a cancelled hasher reported a hash")
	}
	if target.badRead != nil {
		t.Fatal(target.badRead)
	}
}

package payload

import (
	"context"
	"crypto/sha256"
	"io"
	"sync"
	"sync/atomic"
)

// prefixHasher hashes a re-readable target from its start while the payload is still being
// applied, so the final partition check does not wait for a sequential read of the whole
// partition after the last write. Operations complete in order; once operation i has, no
// later operation writes below final[i+1] (the lowest offset any of operations i+1… writes),
// so every byte below it is final and can be hashed.
//
// Its goroutine ends before the apply returns: finish waits for the hash, and stop (on every
// other path) cancels the hasher and waits for a read under way to return, so the caller may
// close the target as soon as Apply has.
type prefixHasher struct {
	target io.ReaderAt
	size   uint64
	final  []uint64

	mu     sync.Mutex
	mark   uint64        // bytes known final
	hashed atomic.Uint64 // bytes hashed so far
	wake   chan struct{} // a mark raise, buffered 1
	result chan hashResult
	cancel context.CancelFunc
	ended  chan struct{} // closed when run returns
}

type hashResult struct {
	sum [32]byte
	err error
}

// newPrefixHasher starts hashing target, whose operations before start are already written.
func newPrefixHasher(ctx context.Context, m *Manifest, target io.ReaderAt, start int) *prefixHasher {
	n := len(m.Operations)
	final := make([]uint64, n+1)
	final[n] = m.PartitionSize
	bs := uint64(m.BlockSize)
	for i := n - 1; i >= 0; i-- {
		final[i] = final[i+1]
		for _, e := range m.Operations[i].Dst {
			final[i] = min(final[i], e.Start*bs)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	h := &prefixHasher{target: target, size: m.PartitionSize, final: final,
		mark: final[start], wake: make(chan struct{}, 1), result: make(chan hashResult, 1),
		cancel: cancel, ended: make(chan struct{})}
	go func() {
		defer close(h.ended)
		h.run(ctx)
	}()
	return h
}

// stop cancels the hasher and returns once its goroutine has ended (at once after finish).
func (h *prefixHasher) stop() {
	h.cancel()
	<-h.ended
}

// done records that operation i has been written (operations complete in order).
func (h *prefixHasher) done(i int) { h.raise(h.final[i+1]) }

// finish records that every operation has been written and returns the partition's hash.
func (h *prefixHasher) finish() ([32]byte, error) {
	h.raise(h.size)
	r := <-h.result
	return r.sum, r.err
}

func (h *prefixHasher) raise(mark uint64) {
	h.mu.Lock()
	h.mark = max(h.mark, mark)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *prefixHasher) run(ctx context.Context) {
	sha := sha256.New()
	buf := make([]byte, 1<<20)
	var off uint64
	for off < h.size {
		if err := ctx.Err(); err != nil {
			h.result <- hashResult{err: err}
			return
		}
		h.mu.Lock()
		mark := h.mark
		h.mu.Unlock()
		if off >= mark {
			select {
			case <-h.wake:
				continue
			case <-ctx.Done():
				h.result <- hashResult{err: ctx.Err()}
				return
			}
		}
		n := min(uint64(len(buf)), mark-off)
		if _, err := h.target.ReadAt(buf[:n], int64(off)); err != nil {
			h.result <- hashResult{err: &TargetError{Op: "re-reading target", Err: err}}
			return
		}
		sha.Write(buf[:n])
		off += n
		h.hashed.Store(off)
	}
	var r hashResult
	sha.Sum(r.sum[:0])
	h.result <- r
}

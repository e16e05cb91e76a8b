package payload

import (
	"bytes"
	"errors"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// heldTarget is an in-memory partition whose re-reads block until release is closed and
// whose writes at or beyond failAt fail with ENOSPC, once a re-read is under way.
type heldTarget struct {
	mu      sync.Mutex
	data    []byte
	failAt  int64
	reading chan struct{} // closed when the first re-read starts
	release chan struct{} // re-reads return once it is closed
	once    sync.Once
}

func (h *heldTarget) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > h.failAt {
		<-h.reading
		return 0, syscall.ENOSPC
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return copy(h.data[off:], p), nil
}

func (h *heldTarget) ReadAt(p []byte, off int64) (int, error) {
	h.once.Do(func() { close(h.reading) })
	<-h.release
	h.mu.Lock()
	defer h.mu.Unlock()
	return copy(p, h.data[off:]), nil
}

// TestApplyWaitsForTargetReads: when a write fails while the partition hasher is re-reading
// the target, Apply returns only after that read has ended. A caller closes the target as
// soon as Apply returns; a read still under way keeps the device (and its lock) open, and
// the next open fails ("disk is held by another writer").
func TestApplyWaitsForTargetReads(t *testing.T) {
	img := testImage(4*testChunk, 21)
	p := buildSigned(t, img, BuildConfig{Compression: Replace})
	vm, err := ReadManifest(t.Context(), bytes.NewReader(p), getKeys(t).verifier)
	if err != nil {
		t.Fatal(err)
	}
	data := p[vm.DataStart:]
	synctest.Test(t, func(t *testing.T) {
		// One worker: operation 0 completes (so the hasher re-reads its chunk) before
		// operation 1's write fails.
		tgt := &heldTarget{data: make([]byte, len(img)), failAt: testChunk,
			reading: make(chan struct{}), release: make(chan struct{})}
		done := make(chan error, 1)
		go func() {
			done <- vm.Apply(t.Context(), bytes.NewReader(data),
				ApplyConfig{Target: tgt, TargetSize: int64(len(img)), Workers: 1})
		}()
		<-tgt.reading
		synctest.Wait() // every goroutine of the apply is blocked or has ended
		select {
		case err := <-done:
			t.Errorf("Apply returned (%v) while the target was still being read", err)
			close(tgt.release)
			return
		default:
		}
		close(tgt.release)
		if err := <-done; !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Apply = %v, want the target's ENOSPC", err)
		}
	})
}

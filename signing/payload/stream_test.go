package payload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestHTTPResume streams a payload from a real HTTP server, loses the connection part-way,
// and resumes with a Range request from the operation after the last completed one.
func TestHTTPResume(t *testing.T) {
	ctx := context.Background()
	k := getKeys(t)
	img := testImage(2<<20, 11)
	p := buildSigned(t, img, BuildConfig{Compression: ReplaceZstd})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "update.bin", time.Time{}, bytes.NewReader(p))
	}))
	defer srv.Close()
	client := srv.Client()
	get := func(from int64) io.ReadCloser {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if from > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", from))
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		want := http.StatusOK
		if from > 0 {
			want = http.StatusPartialContent
		}
		if resp.StatusCode != want {
			t.Fatalf("status %d, want %d", resp.StatusCode, want)
		}
		return resp.Body
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "usr-b.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	body := get(0)
	vm, err := ReadManifest(ctx, body, k.verifier)
	if err != nil {
		t.Fatal(err)
	}
	// The connection drops 100 KiB into the data section.
	last := -1
	err = vm.Apply(ctx, io.LimitReader(body, 100<<10), ApplyConfig{Target: f, Progress: func(p Progress) { last = p.Op }})
	body.Close()
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("dropped connection: %v, want ErrTruncated", err)
	}
	next := last + 1
	body = get(vm.PayloadOffset(next))
	defer body.Close()
	if err := vm.Apply(ctx, body, ApplyConfig{Target: f, StartOp: next, Sync: f.Sync}); err != nil {
		t.Fatalf("resumed apply: %v", err)
	}
	got, _ := os.ReadFile(f.Name())
	if !bytes.Equal(got, img) {
		t.Fatal("result differs")
	}
}

// failingTarget fails every write after the first n bytes.
type failingTarget struct {
	n int64
}

var errDiskFull = errors.New("disk full")

func (f *failingTarget) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.n {
		return 0, errDiskFull
	}
	return len(p), nil
}

func (f *failingTarget) ReadAt(p []byte, off int64) (int, error) { return len(p), nil }

func TestTargetWriteFailure(t *testing.T) {
	k := getKeys(t)
	img := testImage(2<<20, 12)
	for _, c := range []Type{ReplaceXZ, ReplaceZstd, Replace} {
		t.Run(c.String(), func(t *testing.T) {
			p := buildSigned(t, img, BuildConfig{Compression: c})
			// 100 KiB fails inside the first (compressed) chunk, 600 KiB in the random one.
			for _, n := range []int64{100 << 10, 600 << 10} {
				_, err := Apply(context.Background(), bytes.NewReader(p), k.verifier, ApplyConfig{Target: &failingTarget{n: n}, TargetSize: int64(len(img))})
				if !errors.Is(err, errDiskFull) {
					t.Fatalf("Apply = %v, want the target's error", err)
				}
				if errors.Is(err, ErrDecompress) {
					t.Fatalf("a write failure is reported as a decompression error: %v", err)
				}
				if msg := err.Error(); !strings.HasPrefix(msg, "payload: writing operation ") || strings.Count(msg, "payload: ") != 1 {
					t.Fatalf("Apply = %q, want one package prefix and the operation", msg)
				}
			}
		})
	}
}

// TestExtentWriterErrors checks what the extent writer says when an operation overflows
// its destination extents and when the target fails.
func TestExtentWriterErrors(t *testing.T) {
	tests := []struct {
		name   string
		target io.WriterAt
		n      int
		is     error
		want   string
	}{
		{name: "too much", target: &failingTarget{n: 1 << 20}, n: 4097, is: errTooMuch,
			want: "payload: more output than the destination extents hold: operation 7"},
		{name: "target fails", target: &failingTarget{n: 0}, n: 1, is: errDiskFull,
			want: "payload: writing operation 7: disk full"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &extentWriter{target: tt.target, op: 7, ext: []Extent{{Start: 0, Count: 1}}, bs: 4096}
			_, err := w.Write(make([]byte, tt.n))
			if !errors.Is(err, tt.is) || err.Error() != tt.want {
				t.Fatalf("Write = %v, want %q wrapping %v", err, tt.want, tt.is)
			}
		})
	}
}

// slowReader delivers the payload slowly so cancellation lands mid-apply.
type slowReader struct{ r io.Reader }

func (s slowReader) Read(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	return s.r.Read(p[:min(len(p), 4096)])
}

func TestCancel(t *testing.T) {
	k := getKeys(t)
	img := testImage(2<<20, 13)
	p := buildSigned(t, img, BuildConfig{Compression: ReplaceZstd})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Apply(ctx, slowReader{bytes.NewReader(p)}, k.verifier, ApplyConfig{Target: NewHashingSink(), Progress: func(Progress) { cancel() }})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Apply = %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Apply did not return after cancellation")
	}
	cancel()
	// Every goroutine the apply started has ended by the time it returned.
	goleak.VerifyNone(t)
}

func TestHashingSinkOutOfOrder(t *testing.T) {
	data := testImage(1<<20, 14)
	want := sha256.Sum256(data)
	s := NewHashingSink()
	// pieces written back to front
	for off := len(data) - 65536; off >= 0; off -= 65536 {
		if _, err := s.WriteAt(data[off:off+65536], int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	if got, n := s.Sum(); got != want || n != int64(len(data)) {
		t.Fatalf("sum %x over %d bytes", got[:4], n)
	}
	if _, err := s.WriteAt([]byte{1}, 5); err == nil {
		t.Fatal("rewriting a hashed offset was accepted")
	}
	big := NewHashingSink()
	if _, err := big.WriteAt(make([]byte, MaxSinkPending+1), 1); err == nil {
		t.Fatal("more than MaxSinkPending out of order was accepted")
	}
}

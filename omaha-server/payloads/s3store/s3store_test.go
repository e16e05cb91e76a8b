package s3store_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/switchyard-os/switchyard/omaha-server/payloads"
	"github.com/switchyard-os/switchyard/omaha-server/payloads/s3store"
	"github.com/switchyard-os/switchyard/omaha-server/payloads/s3test"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"), goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"), goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

func awsConfig() aws.Config {
	return aws.Config{Credentials: credentials.NewStaticCredentialsProvider(s3test.AccessKey, s3test.SecretKey, "")}
}

func open(t *testing.T, srv *s3test.Server, bucket, prefix string) *s3store.Bucket {
	t.Helper()
	b, err := s3store.Open(t.Context(), s3store.Location{Bucket: bucket, Prefix: prefix, Endpoint: srv.Endpoint, Region: s3test.Region}, awsConfig(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func data(n int) ([]byte, string) {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n)})
	r.Read(b)
	s := sha256.Sum256(b)
	return b, hex.EncodeToString(s[:])
}

// objectFile is where the posix backend keeps bucket/key.
func objectFile(srv *s3test.Server, bucket, key string) string {
	return filepath.Join(srv.Root(), bucket, filepath.FromSlash(key))
}

func noObject(t *testing.T, srv *s3test.Server, b *s3store.Bucket, bucket string, key payloads.Key) {
	t.Helper()
	obj, _ := b.ObjectKey(key)
	if _, err := os.Stat(objectFile(srv, bucket, obj)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an object is left under %s: %v", obj, err)
	}
	if _, err := b.Open(t.Context(), key); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open after a refused upload: %v, want fs.ErrNotExist", err)
	}
	c := s3.New(s3.Options{Credentials: awsConfig().Credentials, Region: s3test.Region, BaseEndpoint: aws.String(srv.Endpoint), UsePathStyle: true})
	ups, err := c.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Errorf("%d multipart uploads left open", len(ups.Uploads))
	}
}

// errAfter delivers n bytes of b, then fails like a client that went away.
type errAfter struct {
	r io.Reader
	n int
}

func (e *errAfter) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	p = p[:min(len(p), e.n)]
	n, err := e.r.Read(p)
	e.n -= n
	return n, err
}

func TestStore(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.CreateBucket("payloads")
	b := open(t, srv, bucket, "fleet/a")
	small, smallSum := data(100 << 10)
	large, largeSum := data(s3store.MinPartSize + 3<<20) // two parts
	for _, tt := range []struct {
		name       string
		body       []byte
		size       int64
		sum        string
		cut        int // > 0: the client goes away after cut bytes
		commitErr  error
		wantErr    error
		wantObject bool
	}{
		{name: "small", body: small, size: int64(len(small)), sum: smallSum, wantObject: true},
		{name: "multipart", body: large, size: int64(len(large)), sum: largeSum, wantObject: true},
		{name: "small wrong hash", body: small, size: int64(len(small)), sum: largeSum, wantErr: payloads.ErrMismatch},
		{name: "multipart wrong hash", body: large, size: int64(len(large)), sum: smallSum, wantErr: payloads.ErrMismatch},
		{name: "multipart short", body: large[:len(large)-1], size: int64(len(large)), wantErr: payloads.ErrMismatch},
		{name: "multipart long", body: large, size: int64(len(large)) - 1, wantErr: payloads.ErrMismatch},
		{name: "client gone after a part", body: large, size: int64(len(large)), sum: largeSum, cut: s3store.MinPartSize + 1, wantErr: io.ErrUnexpectedEOF},
		{name: "client gone early", body: small, size: int64(len(small)), sum: smallSum, cut: 1000, wantErr: io.ErrUnexpectedEOF},
		{name: "commit fails", body: large, size: int64(len(large)), sum: largeSum, commitErr: errors.New("no row"), wantErr: errors.New("no row")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := payloads.Key{App: "app", Board: "amd64-usr", Version: "1.0.0", Name: tt.name + ".gz"}
			var r io.Reader = bytes.NewReader(tt.body)
			if tt.cut > 0 {
				r = &errAfter{r, tt.cut}
			}
			committed := false
			sums, err := b.Store(t.Context(), key, r, payloads.Expect{Size: tt.size, SHA256: tt.sum}, func(s payloads.Sums) error {
				committed = true
				// The object is in place when the commit runs.
				if _, err := b.Open(t.Context(), key); err != nil {
					t.Errorf("object not in place at commit: %v", err)
				}
				return tt.commitErr
			})
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Store: %v", err)
			case tt.wantErr != nil && err == nil:
				t.Fatalf("Store succeeded, want %v", tt.wantErr)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr) && err.Error() != tt.wantErr.Error():
				t.Fatalf("Store: %v, want %v", err, tt.wantErr)
			}
			if !tt.wantObject {
				if committed && tt.commitErr == nil {
					t.Error("a refused upload was committed")
				}
				noObject(t, srv, b, bucket, key)
				return
			}
			if sums.SHA256 != tt.sum || sums.Size != tt.size || len(sums.SHA1) != 40 {
				t.Errorf("sums %+v", sums)
			}
			obj, _ := b.ObjectKey(key)
			if got, err := os.ReadFile(objectFile(srv, bucket, obj)); err != nil || !bytes.Equal(got, tt.body) {
				t.Errorf("object file %s: %d bytes, %v; want the upload", obj, len(got), err)
			}
			// Read back with seeks, as http.ServeContent does.
			f, err := b.Open(t.Context(), key)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if end, err := f.Seek(0, io.SeekEnd); err != nil || end != tt.size {
				t.Fatalf("size %d, %v", end, err)
			}
			for _, off := range []int64{tt.size / 2, 0, tt.size - 10} {
				if _, err := f.Seek(off, io.SeekStart); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, min(4096, tt.size-off))
				if _, err := io.ReadFull(f, got); err != nil || !bytes.Equal(got, tt.body[off:off+int64(len(got))]) {
					t.Fatalf("read at %d: %v", off, err)
				}
			}
			// A second upload of the key never replaces the first.
			_, err = b.Store(t.Context(), key, bytes.NewReader(small), payloads.Expect{Size: int64(len(small))}, func(payloads.Sums) error {
				t.Error("a second upload was committed")
				return nil
			})
			if !errors.Is(err, payloads.ErrExists) {
				t.Errorf("second upload: %v, want ErrExists", err)
			}
			if got, err := os.ReadFile(objectFile(srv, bucket, obj)); err != nil || !bytes.Equal(got, tt.body) {
				t.Errorf("the second upload changed the object: %v", err)
			}
		})
	}
}

func TestUnavailable(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.CreateBucket("payloads")
	b := open(t, srv, bucket, "")
	body, sum := data(s3store.MinPartSize + 1<<20)
	key := payloads.Key{App: "app", Board: "b", Version: "1", Name: "p"}

	// The server goes away in the middle of an upload: after the first part has been read.
	r := &hookReader{r: bytes.NewReader(body), at: s3store.MinPartSize, hook: srv.Stop}
	_, err := b.Store(t.Context(), key, r, payloads.Expect{Size: int64(len(body)), SHA256: sum}, func(payloads.Sums) error {
		t.Error("committed while the store was down")
		return nil
	})
	if !errors.Is(err, payloads.ErrUnavailable) {
		t.Fatalf("upload while the store went down: %v, want ErrUnavailable", err)
	}
	if _, err := b.Open(t.Context(), key); !errors.Is(err, payloads.ErrUnavailable) {
		t.Errorf("Open while down: %v, want ErrUnavailable", err)
	}
	srv.Restart()
	// The parts it left may stay until the store's own cleanup; no object is there.
	obj, _ := b.ObjectKey(key)
	if _, err := os.Stat(objectFile(srv, bucket, obj)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("object after an interrupted upload: %v", err)
	}
	if _, err := b.Store(t.Context(), key, bytes.NewReader(body), payloads.Expect{Size: int64(len(body)), SHA256: sum}, func(payloads.Sums) error { return nil }); err != nil {
		t.Fatalf("upload after the store came back: %v", err)
	}
}

// hookReader calls hook once when at bytes have been read.
type hookReader struct {
	r    io.Reader
	at   int
	n    int
	hook func()
}

func (h *hookReader) Read(p []byte) (int, error) {
	if h.n < h.at {
		p = p[:min(len(p), h.at-h.n)]
	} else if h.hook != nil {
		h.hook()
		h.hook = nil
	}
	n, err := h.r.Read(p)
	h.n += n
	return n, err
}

func TestParseURL(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    s3store.Location
		wantErr bool
	}{
		{in: "s3://bkt/some/prefix/?endpoint=http://127.0.0.1:9000&region=eu-1", want: s3store.Location{Bucket: "bkt", Prefix: "some/prefix", Endpoint: "http://127.0.0.1:9000", Region: "eu-1"}},
		{in: "s3://bkt", want: s3store.Location{Bucket: "bkt"}},
		{in: "s3:///prefix", wantErr: true},
		{in: "https://bkt/x", wantErr: true},
		{in: "s3://bkt/x?endpoint=ftp://h", wantErr: true},
		{in: "s3://bkt/x?endpoint=http://h&bogus=1", wantErr: true},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := s3store.ParseURL(tt.in)
			if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
				t.Fatalf("ParseURL = %+v, %v; want %+v (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

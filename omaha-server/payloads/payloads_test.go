package payloads_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard-os/switchyard/omaha-server/payloads"
)

func TestStore(t *testing.T) {
	data := bytes.Repeat([]byte("payload!"), 10000)
	sum := sha256.Sum256(data)
	good := hex.EncodeToString(sum[:])
	key := payloads.Key{App: "app", Board: "amd64-usr", Version: "4081.2.0", Name: "flatcar_production_update.gz"}
	commitErr := errors.New("row insert failed")
	tests := []struct {
		name     string
		key      payloads.Key
		body     io.Reader
		want     payloads.Expect
		commit   error
		wantErr  error
		wantFile bool
		maxSize  int64
	}{
		{name: "ok", key: key, body: bytes.NewReader(data), want: payloads.Expect{Size: int64(len(data)), SHA256: good}, wantFile: true},
		{name: "ok without hash", key: key, body: bytes.NewReader(data), want: payloads.Expect{Size: int64(len(data))}, wantFile: true},
		{name: "truncated", key: key, body: bytes.NewReader(data[:100]), want: payloads.Expect{Size: int64(len(data))}, wantErr: payloads.ErrMismatch},
		{name: "overlong", key: key, body: bytes.NewReader(append(data, 'x')), want: payloads.Expect{Size: int64(len(data))}, wantErr: payloads.ErrMismatch},
		{name: "wrong hash", key: key, body: bytes.NewReader(data), want: payloads.Expect{Size: int64(len(data)), SHA256: good[:63] + "0"}, wantErr: payloads.ErrMismatch},
		{name: "body error", key: key, body: io.MultiReader(bytes.NewReader(data[:10]), errReader{}), want: payloads.Expect{Size: int64(len(data))}, wantErr: io.ErrUnexpectedEOF},
		{name: "commit fails", key: key, body: bytes.NewReader(data), want: payloads.Expect{Size: int64(len(data))}, commit: commitErr, wantErr: commitErr},
		{name: "too large", key: key, body: bytes.NewReader(data), want: payloads.Expect{Size: int64(len(data))}, maxSize: 10, wantErr: payloads.ErrTooLarge},
		{name: "zero size", key: key, body: bytes.NewReader(nil), want: payloads.Expect{}, wantErr: payloads.ErrMismatch},
		{name: "dotdot", key: payloads.Key{App: "..", Board: "b", Version: "1", Name: "f"}, body: bytes.NewReader(data), want: payloads.Expect{Size: 1}, wantErr: payloads.ErrBadName},
		{name: "slash", key: payloads.Key{App: "a", Board: "b", Version: "1", Name: "x/../../f"}, body: bytes.NewReader(data), want: payloads.Expect{Size: 1}, wantErr: payloads.ErrBadName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			max := tt.maxSize
			if max == 0 {
				max = 1 << 30
			}
			d, err := payloads.Open(dir, max)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			committed := false
			sums, err := d.Store(context.Background(), tt.key, tt.body, tt.want, func(s payloads.Sums) error {
				committed = true
				return tt.commit
			})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := d.Exists(tt.key); got != tt.wantFile {
				t.Errorf("file exists = %v, want %v", got, tt.wantFile)
			}
			if tt.wantErr == nil {
				if sums.SHA256 != good || sums.Size != int64(len(data)) || len(sums.SHA1) != 40 || !committed {
					t.Errorf("sums = %+v, committed %v", sums, committed)
				}
				f, err := d.Open(t.Context(), tt.key)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(f)
				fi, err := f.(*os.File).Stat()
				f.Close()
				if err != nil || fi.Mode().Perm() != 0o644 {
					t.Errorf("stored file mode %v (%v), want 0644: hosted files are public", fi.Mode().Perm(), err)
				}
				if !bytes.Equal(got, data) {
					t.Error("stored bytes differ")
				}
			} else if committed && tt.commit == nil {
				t.Error("commit ran for a failed upload")
			}
			left, _ := os.ReadDir(filepath.Join(dir, ".tmp"))
			if len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestOpenStaysInside(t *testing.T) {
	dir := t.TempDir()
	d, err := payloads.Open(filepath.Join(dir, "p"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	os.WriteFile(filepath.Join(dir, "secret"), []byte("x"), 0o644)
	if _, err := d.Open(t.Context(), payloads.Key{App: "..", Board: "..", Version: "..", Name: "secret"}); err == nil {
		t.Fatal("opened a file outside the directory")
	}
}

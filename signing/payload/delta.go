package payload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
)

// fromSource applies a format 2 SOURCE_COPY or SOURCE_ZSTD operation: it reads the
// operation's source extents into the worker's buffer, checks their SHA-256 against the
// manifest (ErrSourceHash) and only then copies them or decodes the patch with them as the
// dictionary. Nothing is written before the check.
func (v *Verified) fromSource(ctx context.Context, j *job, d *decoder2, w *extentWriter, cfg ApplyConfig, decoded func(io.Reader) error) error {
	bs := uint64(v.Manifest.BlockSize)
	var n uint64
	for _, e := range j.op.Src {
		n += e.Count * bs
	}
	if n > MaxSourceRead { // validation has refused it; the buffer's bound must not rest on that alone
		return fmt.Errorf("%w: operation %d reads %d source bytes", ErrOperationTooLarge, j.idx, n)
	}
	if uint64(cap(d.src)) < n {
		d.src = make([]byte, n, MaxSourceRead)
	}
	src := d.src[:n]
	var off uint64
	for _, e := range j.op.Src {
		c := e.Count * bs
		if _, err := cfg.Source.ReadAt(src[off:off+c], int64(e.Start*bs)); err != nil {
			if errors.Is(err, io.EOF) {
				// The source ends before an extent the manifest says it holds.
				return fmt.Errorf("%w: operation %d source %d+%d beyond the source's end", ErrSourceMismatch, j.idx, e.Start, e.Count)
			}
			return fmt.Errorf("payload: operation %d reading source: %w", j.idx, err)
		}
		off += c
	}
	want := j.op.SHA256
	if j.op.Type == SourceZstd {
		want = j.op.SourceSHA256
	}
	if sha256.Sum256(src) != want {
		return fmt.Errorf("%w: operation %d", ErrSourceHash, j.idx)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if j.op.Type == SourceCopy {
		_, err := w.Write(src)
		return err // only the extent writer fails, and it names the operation
	}
	if err := d.patch.ResetWithOptions(bytes.NewReader(j.data), zstd.WithDecoderDictDelete(), zstd.WithDecoderDictRaw(0, src)); err != nil {
		return fmt.Errorf("%w: operation %d: %v", ErrDecompress, j.idx, err)
	}
	return decoded(io.LimitReader(d.patch, int64(v.Manifest.opBytes(j.op))+1))
}

// checkSourceSize refuses a source whose size is known and is not the delta's source size
// (ErrSourceMismatch). The size is ApplyConfig.SourceSize, else the source's Size method,
// else a file's length (a regular file) or end (a block device). A source of unknown size
// is read as it is: every operation's source bytes are hashed before use.
func checkSourceSize(cfg ApplyConfig, want uint64) error {
	size, known, err := readerSize(cfg.Source, cfg.SourceSize)
	if err != nil {
		return err
	}
	if known && uint64(size) != want {
		return fmt.Errorf("%w: source is %d bytes, the delta's source %d bytes", ErrSourceMismatch, size, want)
	}
	return nil
}

// readerSize returns the size of a source partition, when it can be known.
func readerSize(r io.ReaderAt, given int64) (int64, bool, error) {
	if given > 0 {
		return given, true, nil
	}
	switch t := r.(type) {
	case interface{ Size() int64 }:
		return t.Size(), true, nil
	case *os.File:
		st, err := t.Stat()
		if err != nil {
			return 0, false, fmt.Errorf("payload: sizing source: %w", err)
		}
		if st.Mode().IsRegular() {
			return st.Size(), true, nil
		}
		end, err := t.Seek(0, io.SeekEnd)
		if err != nil {
			return 0, false, fmt.Errorf("payload: sizing source: %w", err)
		}
		return end, true, nil
	}
	return 0, false, nil
}

// CheckSource reads the whole source partition (size bytes; 0 means learn it as Apply
// does) and compares its size and SHA-256 with the delta's (ErrSourceMismatch), so a host
// can choose the full payload before downloading the delta's data. Apply does not need it:
// it hashes every source byte an operation reads before using it. A full payload
// (format 1) names no source: CheckSource returns nil.
func (v *Verified) CheckSource(ctx context.Context, src io.ReaderAt, size int64) error {
	s := v.Manifest.Source
	if s == nil {
		return nil
	}
	if src == nil {
		return ErrNoSource
	}
	if err := checkSourceSize(ApplyConfig{Source: src, SourceSize: size}, s.Size); err != nil {
		return err
	}
	h := sha256.New()
	buf := make([]byte, pieceSize)
	for off := uint64(0); off < s.Size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := min(uint64(len(buf)), s.Size-off)
		if _, err := src.ReadAt(buf[:c], int64(off)); err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: source ends before %d bytes", ErrSourceMismatch, s.Size)
			}
			return fmt.Errorf("payload: reading source: %w", err)
		}
		h.Write(buf[:c])
		off += c
	}
	if !bytes.Equal(h.Sum(nil), s.SHA256[:]) {
		return fmt.Errorf("%w: source SHA-256 %x, the delta's %x", ErrSourceMismatch, h.Sum(nil)[:8], s.SHA256[:8])
	}
	return nil
}

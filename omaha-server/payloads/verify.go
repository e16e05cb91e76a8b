package payloads

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"strings"
)

// Verifier is an upload on its way into a backend: it reads at most one byte more than
// declared, hashes while streaming, and turns the end of the stream into ErrMismatch when
// the size or SHA-256 differs from the declaration, so a backend that stops at the first
// error never places a wrong file. Every backend reads uploads through one.
type Verifier struct {
	r    io.Reader
	want Expect
	n    int64
	s256 hash.Hash
	s1   hash.Hash
	err  error
}

// NewVerifier checks the declaration against maxSize and returns a reader of r that
// fails with ErrMismatch instead of ending when the bytes are not the declared ones; it
// stops with ctx's error when ctx ends.
func NewVerifier(ctx context.Context, r io.Reader, want Expect, maxSize int64) (*Verifier, error) {
	if want.Size <= 0 {
		return nil, fmt.Errorf("%w: the declared size must be above zero", ErrMismatch)
	}
	if want.Size > maxSize {
		return nil, fmt.Errorf("%w: %d bytes declared, the limit is %d", ErrTooLarge, want.Size, maxSize)
	}
	want.SHA256 = strings.ToLower(want.SHA256)
	// One byte more than declared shows an overlong body.
	return &Verifier{r: io.LimitReader(ctxReader{ctx, r}, want.Size+1), want: want, s256: sha256.New(), s1: sha1.New()}, nil
}

// Read implements io.Reader; it returns io.EOF only after the whole declared file passed.
func (v *Verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.s256.Write(p[:n])
	v.s1.Write(p[:n])
	switch {
	case v.n > v.want.Size:
		v.err = fmt.Errorf("%w: received %d bytes or more, declared %d", ErrMismatch, v.n, v.want.Size)
		return 0, v.err
	case err == io.EOF && v.n != v.want.Size:
		v.err = fmt.Errorf("%w: received %d bytes, declared %d", ErrMismatch, v.n, v.want.Size)
		return n, v.err
	case err == io.EOF && v.want.SHA256 != "" && v.want.SHA256 != hexSum(v.s256):
		v.err = fmt.Errorf("%w: SHA-256 %s, declared %s", ErrMismatch, hexSum(v.s256), v.want.SHA256)
		return n, v.err
	case err != nil && err != io.EOF:
		v.err = fmt.Errorf("payloads: receiving the upload after %d bytes: %w", v.n, err)
		return n, v.err
	}
	return n, err
}

// Passed reports whether the whole declared file was read and matched.
func (v *Verifier) Passed() bool {
	return v.err == nil && v.n == v.want.Size && (v.want.SHA256 == "" || v.want.SHA256 == hexSum(v.s256))
}

// Sums are what has been read so far.
func (v *Verifier) Sums() Sums {
	return Sums{Size: v.n, SHA256: hexSum(v.s256), SHA1: hexSum(v.s1)}
}

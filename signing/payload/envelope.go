package payload

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/switchyard-os/switchyard/internal/atomicfile"
	"github.com/switchyard-os/switchyard/signing/keys"
)

// Envelope is a payload's header, manifest and signatures, parsed but not yet verified.
type Envelope struct {
	Header        Header
	ManifestBytes []byte
	Manifest      *Manifest
	Signatures    []Signature
}

// ReadEnvelope reads and parses the header, manifest and signature section from r, leaving
// r at the start of the data section. Every length is bounded before it is allocated. It
// does not verify; see ReadManifest.
func ReadEnvelope(r io.Reader) (*Envelope, error) {
	e, err := readRaw(r)
	if err != nil {
		return nil, err
	}
	if e.Manifest, err = ParseManifestVersion(e.Header.Version, e.ManifestBytes); err != nil {
		return nil, err
	}
	return e, nil
}

// readRaw reads the header, the manifest bytes and the signatures, without parsing the
// manifest.
func readRaw(r io.Reader) (*Envelope, error) {
	hb := make([]byte, HeaderSize)
	if err := readFull(r, hb, "header"); err != nil {
		return nil, err
	}
	h, err := ParseHeader(hb)
	if err != nil {
		return nil, err
	}
	mb := make([]byte, h.ManifestLength)
	if err := readFull(r, mb, "manifest"); err != nil {
		return nil, err
	}
	sb := make([]byte, h.SignatureSection)
	if err := readFull(r, sb, "signatures"); err != nil {
		return nil, err
	}
	sigs, err := ParseSignatures(sb)
	if err != nil {
		return nil, err
	}
	return &Envelope{Header: h, ManifestBytes: mb, Signatures: sigs}, nil
}

// DataStart returns the offset of the data section in the payload.
func (e *Envelope) DataStart() int64 {
	return HeaderSize + int64(e.Header.ManifestLength) + int64(e.Header.SignatureSection)
}

func (e *Envelope) headerBytes() []byte {
	b, _ := e.Header.MarshalBinary()
	return b
}

// Verify checks the signatures against the accepted keys (rules in the package doc) and
// returns the hex key ID of the key that verified.
func (e *Envelope) Verify(v *keys.Verifier) (string, error) {
	if len(e.Signatures) == 0 {
		return "", ErrUnsigned
	}
	if v == nil || len(v.KeyIDs()) == 0 {
		return "", ErrNoKeys
	}
	hdr := e.headerBytes()
	good := ""
	for _, s := range e.Signatures {
		id := hex.EncodeToString(s.KeyID[:])
		if _, ok := v.Key(id); !ok {
			continue
		}
		if err := v.Verify(id, signedMessage(hdr, s.KeyID, e.ManifestBytes), s.Signature); err != nil {
			return "", fmt.Errorf("%w: key %.16s: %v", ErrBadSignature, id, err)
		}
		if good == "" {
			good = id
		}
	}
	if good == "" {
		return "", ErrWrongKey
	}
	return good, nil
}

// AddSignature signs the manifest with s, replacing an earlier signature by the same key.
func (e *Envelope) AddSignature(ctx context.Context, s keys.Signer) error {
	raw, err := hex.DecodeString(s.KeyID())
	if err != nil || len(raw) != 32 {
		return fmt.Errorf("payload: signer key id %q is not a hex SHA-256", s.KeyID())
	}
	var id [32]byte
	copy(id[:], raw)
	sig, err := s.Sign(ctx, signedMessage(e.headerBytes(), id, e.ManifestBytes))
	if err != nil {
		return fmt.Errorf("payload: signing manifest: %w", err)
	}
	sigs := []Signature{{KeyID: id, Signature: sig}}
	for _, o := range e.Signatures {
		if o.KeyID != id {
			sigs = append(sigs, o)
		}
	}
	if _, err := marshalSignatures(sigs); err != nil {
		return err
	}
	e.Signatures = sigs
	return nil
}

// WriteHead writes the header, manifest and signature section.
func (e *Envelope) WriteHead(w io.Writer) error {
	sb, err := marshalSignatures(e.Signatures)
	if err != nil {
		return err
	}
	e.Header.SignatureSection = uint32(len(sb))
	e.Header.ManifestLength = uint64(len(e.ManifestBytes))
	for _, b := range [][]byte{e.headerBytes(), e.ManifestBytes, sb} {
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("payload: writing: %w", err)
		}
	}
	return nil
}

// Verified is a manifest whose signature checked against an accepted key.
type Verified struct {
	Manifest *Manifest
	// KeyID is the hex ID of the key whose signature verified.
	KeyID string
	// DataStart is the payload offset of the data section.
	DataStart int64
}

// PayloadOffset returns the byte offset in the payload where operation k's data starts:
// where a resumed download begins (HTTP Range: bytes=PayloadOffset(k)-).
func (v *Verified) PayloadOffset(k int) int64 {
	return v.DataStart + int64(v.Manifest.Operations[k].DataOffset)
}

// ReadManifest reads the header, manifest and signatures from r and verifies them against
// the accepted keys. On success r is at the start of the data section.
func ReadManifest(ctx context.Context, r io.Reader, v *keys.Verifier) (*Verified, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if v == nil {
		return nil, ErrNoKeys
	}
	// The signature is checked over the raw bytes before the manifest is parsed: the parser
	// only ever sees bytes an accepted key signed.
	e, err := readRaw(r)
	if err != nil {
		return nil, err
	}
	id, err := e.Verify(v)
	if err != nil {
		return nil, err
	}
	m, err := ParseManifestVersion(e.Header.Version, e.ManifestBytes)
	if err != nil {
		return nil, err
	}
	return &Verified{Manifest: m, KeyID: id, DataStart: e.DataStart()}, nil
}

// SignFile adds a signature by s to the payload at path, rewriting it atomically (temp
// file in the same directory, fsync, rename, fsync of the directory). The data section is
// copied unchanged.
func SignFile(ctx context.Context, path string, s keys.Signer) error {
	in, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	defer in.Close()
	br := bufio.NewReaderSize(in, 1<<20)
	e, err := ReadEnvelope(br)
	if err != nil {
		return err
	}
	if err := e.AddSignature(ctx, s); err != nil {
		return err
	}
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	return atomicfile.Write(path, st.Mode().Perm(), func(w io.Writer) error {
		if err := e.WriteHead(w); err != nil {
			return err
		}
		n, err := io.Copy(w, br)
		if err != nil {
			return fmt.Errorf("payload: copying data: %w", err)
		}
		if uint64(n) != e.Manifest.DataSize() {
			if uint64(n) < e.Manifest.DataSize() {
				return fmt.Errorf("%w: data section has %d of %d bytes", ErrTruncated, n, e.Manifest.DataSize())
			}
			return fmt.Errorf("%w: data section has %d bytes, manifest says %d", ErrTrailingData, n, e.Manifest.DataSize())
		}
		return nil
	})
}

package gpt

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers branch on them with errors.Is; the wrapping error names the copy,
// the LBA and the field.
var (
	// ErrNoGPT: neither LBA 1 nor the backup location holds the "EFI PART" signature.
	ErrNoGPT = errors.New("gpt: no GPT found")
	// ErrTruncated: the image ends before a structure it must hold.
	ErrTruncated = errors.New("gpt: image is truncated")
	// ErrNoProtectiveMBR: sector 0 has no 0x55AA signature or no record of type 0xEE.
	ErrNoProtectiveMBR = errors.New("gpt: no protective MBR")
	// ErrBadHeader: a header field is out of range or its CRC does not match.
	ErrBadHeader = errors.New("gpt: corrupt header")
	// ErrEntriesCRC: the entry array does not match the CRC its header records.
	ErrEntriesCRC = errors.New("gpt: partition entry array CRC mismatch")
	// ErrBadEntry: a used entry lies outside the usable range or overlaps another.
	ErrBadEntry = errors.New("gpt: invalid partition entry")
	// ErrCopiesDiffer: both copies are valid but do not describe the same table.
	ErrCopiesDiffer = errors.New("gpt: primary and backup differ")
	// ErrNoPartition: no used entry has the requested number.
	ErrNoPartition = errors.New("gpt: no such partition")
	// ErrReadBack: what was read back after a write is not what was written.
	ErrReadBack = errors.New("gpt: read-back mismatch")
	// ErrInvalidLayout: a table to create is not well formed.
	ErrInvalidLayout = errors.New("gpt: invalid layout")
)

// CopyError says which copy of the table (primary or backup), at which LBA, is unusable.
type CopyError struct {
	Copy string // "primary" or "backup"
	LBA  uint64 // the header's LBA
	Err  error
}

func (e *CopyError) Error() string {
	return fmt.Sprintf("gpt: %s header at LBA %d: %v", e.Copy, e.LBA, trimPrefix(e.Err))
}

func (e *CopyError) Unwrap() error { return e.Err }

// InvalidError is returned by Read when neither copy is valid; it carries both reasons.
type InvalidError struct {
	Primary, Backup error
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("gpt: no valid GPT: %v; %v", trimPrefix(e.Primary), trimPrefix(e.Backup))
}

func (e *InvalidError) Unwrap() []error { return []error{e.Primary, e.Backup} }

// trimPrefix drops a leading "gpt: " so nested messages do not stutter.
func trimPrefix(err error) string {
	s := err.Error()
	if len(s) > 5 && s[:5] == "gpt: " {
		return s[5:]
	}
	return s
}

// fieldError wraps a sentinel with the detail of what is wrong.
func fieldError(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}

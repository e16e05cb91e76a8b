// Package smallfile reads files that must be small (keys, TUF metadata, state, version
// files) with a bound: at most a limit of bytes, and a clear error naming the path and the
// limit when the file holds more. It never truncates silently and never reads more than
// limit+1 bytes, whatever the file claims or grows to while it is read.
//
// The read takes no context: like os.ReadFile it touches one local file of bounded size.
// The package uses the standard library only, so every area of the module may import it.
package smallfile

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTooLarge: the file holds more than the limit. It is wrapped by the error Read returns,
// which names the path and the limit.
var ErrTooLarge = errors.New("smallfile: file too large")

// Read returns the content of the file at path, which must hold at most limit bytes. An
// error from opening the file wraps the os error (errors.Is(err, fs.ErrNotExist) works).
func Read(path string, limit int64) ([]byte, error) {
	if limit < 0 {
		return nil, fmt.Errorf("smallfile: reading %s: negative limit %d", path, limit)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("smallfile: %w", err)
	}
	defer f.Close()
	return ReadFrom(f, limit)
}

// ReadFrom is Read on a file the caller opened (to check its mode first, say); it reads
// from the current offset and leaves f open.
func ReadFrom(f *os.File, limit int64) ([]byte, error) {
	path := f.Name()
	if limit < 0 {
		return nil, fmt.Errorf("smallfile: reading %s: negative limit %d", path, limit)
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > limit {
		return nil, tooLarge(path, limit)
	}
	// The size from Stat is only a hint: the file may grow, or not be a regular file.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("smallfile: reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, tooLarge(path, limit)
	}
	return data, nil
}

func tooLarge(path string, limit int64) error {
	return fmt.Errorf("%w: %s holds more than %d bytes", ErrTooLarge, path, limit)
}

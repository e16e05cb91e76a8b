package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchyard-os/switchyard/internal/smallfile"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Fetcher gets one metadata file of the repository by its name ("timestamp.json",
// "3.root.json", "7.snapshot.json"), reading at most maxLength bytes. A file the repository
// does not have is an error matching fs.ErrNotExist (go-tuf ends the root chain on it); a
// longer one is a *metadata.ErrDownloadLengthMismatch. Nothing it returns is trusted: the
// refresh verifies every byte.
type Fetcher interface {
	Fetch(ctx context.Context, name string, maxLength int64) ([]byte, error)
}

// HTTPFetcher fetches from a repository URL (Config.MetadataURL) with a given HTTP client
// (timeouts) and the refresh's context (cancellation).
type HTTPFetcher struct {
	BaseURL string // ends in "/" or not; names are appended
	Client  *http.Client
}

// Fetch implements Fetcher.
func (f HTTPFetcher) Fetch(ctx context.Context, name string, maxLength int64) ([]byte, error) {
	url := strings.TrimSuffix(f.BaseURL, "/") + "/" + name
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("tufclient: %w", err)
	}
	resp, err := f.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("tufclient: fetching %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// go-tuf stops walking the root chain on exactly this error with 404.
		return nil, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: url}
	}
	if resp.ContentLength > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s: length %d is larger than %d", url, resp.ContentLength, maxLength)}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxLength+1))
	if err != nil {
		return nil, fmt.Errorf("tufclient: fetching %s: %w", url, err)
	}
	if int64(len(data)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s: more than %d bytes", url, maxLength)}
	}
	return data, nil
}

// DirFetcher reads the metadata from a local directory holding the files as the repository
// serves them (air-gapped installs from local media).
type DirFetcher struct {
	Dir string
}

// Fetch implements Fetcher.
func (f DirFetcher) Fetch(ctx context.Context, name string, maxLength int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	data, err := smallfile.Read(filepath.Join(f.Dir, name), maxLength)
	if errors.Is(err, smallfile.ErrTooLarge) {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: err.Error()}
	}
	if err != nil {
		return nil, fmt.Errorf("tufclient: %w", err)
	}
	return data, nil
}

// Files is a repository held in memory, file name → contents (metadata read from a stream,
// such as a tar archive on local media).
type Files map[string][]byte

// Fetch implements Fetcher.
func (f Files) Fetch(ctx context.Context, name string, maxLength int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, ok := f[name]
	if !ok {
		return nil, fmt.Errorf("tufclient: %s: %w", name, fs.ErrNotExist)
	}
	if int64(len(data)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s: more than %d bytes", name, maxLength)}
	}
	return data, nil
}

// checkName accepts only the plain file names go-tuf asks for.
func checkName(name string) error {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return fmt.Errorf("tufclient: bad metadata name %q", name)
	}
	return nil
}

// localBase is the repository URL handed to go-tuf when a Fetcher other than HTTP is
// configured: go-tuf builds URLs from it, the adapter cuts it off again.
const localBase = "switchyard-local:///"

// adapter implements go-tuf's fetcher.Fetcher over a Fetcher, with the refresh's context.
type adapter struct {
	ctx  context.Context
	base string // the URL prefix go-tuf puts before each name
	f    Fetcher
}

func (a *adapter) DownloadFile(url string, maxLength int64, _ time.Duration) ([]byte, error) {
	name, ok := strings.CutPrefix(url, a.base)
	if !ok {
		return nil, fmt.Errorf("tufclient: unexpected metadata URL %q", url)
	}
	data, err := a.f.Fetch(a.ctx, name, maxLength)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: http.StatusNotFound, URL: url}
	}
	return data, err
}

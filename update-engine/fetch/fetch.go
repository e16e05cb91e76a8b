// Package fetch streams a payload over HTTP(S) with resume and failover.
//
// A Source is one payload: its URLs in the order Omaha listed them and its exact length (as
// TUF pins it). Open(ctx, off) returns a reader of bytes [off, Length) that survives dropped
// connections: when a read fails it reconnects with "Range: bytes=N-" at the first byte not
// yet delivered, waiting Backoff between attempts; after MaxFailuresPerURL consecutive
// failures on one URL it moves to the next (wrapping around), and after MaxAttempts failures
// in total it gives up with a *TransferError (Omaha code 9, DownloadTransferError). Receiving
// bytes resets the per-URL failure count, as in Flatcar.
//
// Bounds: a reader never delivers more than Length−off bytes; a server that sends more, or
// a Content-Range that does not start where asked, is an error for that attempt. A server
// that ignores Range (200 instead of 206) is tolerated by discarding the bytes before off
// (logged, since it wastes bandwidth). Every URL passes the transport policy first.
//
// A transfer that stalls is ended like a dropped one, as curl's low-speed limit ends it for
// Flatcar's update_engine (below 10 bytes/s for 90 s, then a resume after a pause): a
// watchdog counts the bytes each connection delivers and, when a whole LowSpeedTime window
// brings fewer than LowSpeedLimit×LowSpeedTime bytes, cancels that connection's request. The
// read then fails, counts as an attempt, and the next one resumes with Range at the first
// byte not yet delivered. The watchdog runs from the request on, so it also ends a server
// that sends no headers for a whole window (the transport's header timeout may end it
// sooner); no server can hold a reader forever. The watchdog is one goroutine per connection
// and ends before the connection is given up.
//
// Source counts every byte it receives (Received), so callers and tests can see what resume
// saved.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
)

// HTTPDoer is the part of *http.Client the source uses.
type HTTPDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// TransferError is a download that could not be completed; it maps to Omaha code 9.
type TransferError struct{ Err error }

func (e *TransferError) Error() string              { return "fetch: " + e.Err.Error() }
func (e *TransferError) Unwrap() error              { return e.Err }
func (e *TransferError) ErrorCode() omaha.ErrorCode { return omaha.ErrorCodeDownloadTransferError }

// Source is one payload at one or more URLs.
type Source struct {
	URLs   []string
	Length int64
	HTTP   HTTPDoer
	// CheckURL vets each URL before use (transport.Config.CheckURL); nil accepts all.
	CheckURL func(string) error
	Log      *slog.Logger

	Options

	received atomic.Int64
}

// Options tune retries.
type Options struct {
	MaxFailuresPerURL int           // 0: 3
	MaxAttempts       int           // 0: 20, as Flatcar's transfer retries
	Backoff           time.Duration // 0: 2 s; doubled per consecutive failure, at most 30 s
	// LowSpeedLimit and LowSpeedTime end a stalled transfer: a connection that delivers
	// fewer than LowSpeedLimit bytes per second over a whole LowSpeedTime window is cut and
	// the transfer resumed. 0 (or less) means Flatcar's: 10 bytes/s over 90 s.
	LowSpeedLimit int64
	LowSpeedTime  time.Duration
	// After waits between attempts; nil uses a timer.
	After func(time.Duration) <-chan time.Time
	// WindowAfter paces the low-speed windows; nil uses a timer.
	WindowAfter func(time.Duration) <-chan time.Time
}

// Defaults of Options, as Flatcar's update_engine sets libcurl's low-speed limit.
const (
	DefaultLowSpeedLimit = 10               // bytes per second
	DefaultLowSpeedTime  = 90 * time.Second // the window the limit is averaged over
)

// ErrStalled is a connection the low-speed limit ended.
var ErrStalled = errors.New("fetch: transfer stalled below the low-speed limit")

// Received returns the bytes received from servers so far, across all readers.
func (s *Source) Received() int64 { return s.received.Load() }

// Open returns a reader of [off, Length).
func (s *Source) Open(ctx context.Context, off int64) (io.ReadCloser, error) {
	if len(s.URLs) == 0 {
		return nil, &TransferError{Err: errors.New("no URL")}
	}
	if off < 0 || off > s.Length {
		return nil, fmt.Errorf("fetch: offset %d outside [0, %d]", off, s.Length)
	}
	if s.CheckURL != nil {
		for _, u := range s.URLs {
			if err := s.CheckURL(u); err != nil {
				return nil, err
			}
		}
	}
	return &reader{s: s, ctx: ctx, pos: off}, nil
}

type reader struct {
	s        *Source
	ctx      context.Context
	pos      int64
	body     io.ReadCloser
	watch    *watchdog // of the open connection; nil when none
	url      int
	urlFails int
	attempts int
	lastErr  error
}

func (r *reader) log() *slog.Logger {
	if r.s.Log != nil {
		return r.s.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (r *reader) Read(p []byte) (int, error) {
	if r.pos >= r.s.Length {
		return 0, io.EOF
	}
	if int64(len(p)) > r.s.Length-r.pos {
		p = p[:r.s.Length-r.pos]
	}
	for {
		if err := r.ctx.Err(); err != nil {
			r.closeBody() // and its watchdog
			return 0, err
		}
		if r.body == nil {
			if err := r.connect(); err != nil {
				if r.ctx.Err() != nil {
					return 0, r.ctx.Err()
				}
				if ferr := r.fail(err); ferr != nil {
					return 0, ferr
				}
				continue
			}
		}
		n, err := r.body.Read(p)
		if n > 0 {
			r.pos += int64(n)
			r.s.received.Add(int64(n))
			r.urlFails = 0
			if r.pos == r.s.Length {
				r.closeBody()
			}
			return n, nil
		}
		if err == nil {
			continue
		}
		stalled := r.watch != nil && r.watch.fired()
		r.closeBody()
		if r.ctx.Err() != nil {
			return 0, r.ctx.Err()
		}
		if stalled {
			err = fmt.Errorf("%w at byte %d of %d", ErrStalled, r.pos, r.s.Length)
		}
		if err == io.EOF {
			err = fmt.Errorf("connection closed at byte %d of %d", r.pos, r.s.Length)
		}
		if ferr := r.fail(err); ferr != nil {
			return 0, ferr
		}
	}
}

// fail records a failed attempt, waits, and picks the URL for the next one. It returns a
// *TransferError when the attempts are used up.
func (r *reader) fail(err error) error {
	r.lastErr = err
	r.attempts++
	r.urlFails++
	max := r.s.MaxAttempts
	if max == 0 {
		max = 20
	}
	perURL := r.s.MaxFailuresPerURL
	if perURL == 0 {
		perURL = 3
	}
	url := r.s.URLs[r.url]
	if r.attempts >= max {
		return &TransferError{Err: fmt.Errorf("giving up after %d attempts, last at %s: %w", r.attempts, url, err)}
	}
	if r.urlFails >= perURL && len(r.s.URLs) > 1 {
		r.url = (r.url + 1) % len(r.s.URLs)
		r.urlFails = 0
		r.log().Warn("payload URL failing, trying the next", "failed", url, "next", r.s.URLs[r.url], "err", err)
	} else {
		r.log().Warn("payload transfer interrupted, resuming", "url", url, "offset", r.pos, "err", err)
	}
	d := r.s.Backoff
	if d == 0 {
		d = 2 * time.Second
	}
	for i := 1; i < r.urlFails && d < 30*time.Second; i++ {
		d *= 2
	}
	d = min(d, 30*time.Second)
	after := r.s.After
	if after == nil {
		t := time.NewTimer(d)
		defer t.Stop()
		after = func(time.Duration) <-chan time.Time { return t.C }
	}
	select {
	case <-r.ctx.Done():
		return r.ctx.Err()
	case <-after(d):
	}
	return nil
}

// connect opens a connection at r.pos. On success r.body and r.watch are set; on failure
// neither is, and the watchdog has ended.
func (r *reader) connect() (err error) {
	url := r.s.URLs[r.url]
	ctx, cancel := context.WithCancel(r.ctx)
	w := r.s.watch(ctx, cancel)
	defer func() {
		if err != nil {
			if w.fired() {
				err = fmt.Errorf("%s: %w before the payload started", url, ErrStalled)
			}
			w.stop()
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if r.pos > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(r.pos, 10)+"-")
	}
	resp, err := r.s.HTTP.Do(req)
	if err != nil {
		return err
	}
	resp.Body = &counting{rc: resp.Body, w: w}
	want := r.s.Length - r.pos
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, err := contentRangeStart(resp.Header.Get("Content-Range"))
		if err != nil || start != r.pos {
			resp.Body.Close()
			return fmt.Errorf("%s: Content-Range %q does not start at %d", url, resp.Header.Get("Content-Range"), r.pos)
		}
	case http.StatusOK:
		if r.pos > 0 {
			r.log().Warn("server ignores Range: discarding the bytes before the resume point", "url", url, "bytes", r.pos)
			n, err := io.CopyN(io.Discard, resp.Body, r.pos)
			r.s.received.Add(n)
			if err != nil {
				resp.Body.Close()
				return fmt.Errorf("%s: skipping to %d: %w", url, r.pos, err)
			}
		}
	default:
		resp.Body.Close()
		return fmt.Errorf("%s: HTTP %s", url, resp.Status)
	}
	if resp.ContentLength >= 0 && resp.StatusCode == http.StatusPartialContent && resp.ContentLength != want {
		resp.Body.Close()
		return fmt.Errorf("%s: %d bytes announced, %d expected", url, resp.ContentLength, want)
	}
	r.body = &limited{rc: resp.Body, n: want}
	r.watch = w
	return nil
}

// watchdog ends a connection that delivers too little: every window it compares the bytes
// counted since the last look with the low-speed limit and, below it, cancels the request.
type watchdog struct {
	n      atomic.Int64
	stall  atomic.Bool
	quit   chan struct{}
	done   chan struct{}
	cancel context.CancelFunc
}

// watch starts a watchdog for one connection; ctx is the request's context and cancel ends
// it. The watchdog also ends with ctx, so a reader abandoned without Close leaves nothing
// behind once its context ends.
func (s *Source) watch(ctx context.Context, cancel context.CancelFunc) *watchdog {
	limit, window := s.LowSpeedLimit, s.LowSpeedTime
	if limit <= 0 {
		limit = DefaultLowSpeedLimit
	}
	if window <= 0 {
		window = DefaultLowSpeedTime
	}
	need := max(int64(float64(limit)*window.Seconds()), 1)
	after := s.WindowAfter
	if after == nil {
		after = time.After
	}
	w := &watchdog{quit: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.quit:
				return
			case <-ctx.Done():
				return
			case <-after(window):
			}
			if w.n.Swap(0) < need {
				w.stall.Store(true)
				cancel()
				return
			}
		}
	}()
	return w
}

// add counts bytes delivered.
func (w *watchdog) add(n int) { w.n.Add(int64(n)) }

// fired reports whether the watchdog cut the connection.
func (w *watchdog) fired() bool { return w.stall.Load() }

// stop ends the watchdog and waits for its goroutine, then releases the request's context.
func (w *watchdog) stop() {
	close(w.quit)
	<-w.done
	w.cancel()
}

// counting counts the bytes a body delivers for its watchdog.
type counting struct {
	rc io.ReadCloser
	w  *watchdog
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.w.add(n)
	return n, err
}

func (c *counting) Close() error { return c.rc.Close() }

// limited reads at most n bytes and reports a longer body as an error.
type limited struct {
	rc io.ReadCloser
	n  int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n <= 0 {
		var one [1]byte
		if k, _ := l.rc.Read(one[:]); k > 0 {
			return 0, errors.New("server sent more than the payload length")
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.rc.Read(p)
	l.n -= int64(n)
	return n, err
}

func (l *limited) Close() error { return l.rc.Close() }

func (r *reader) closeBody() {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
	if r.watch != nil {
		r.watch.stop()
		r.watch = nil
	}
}

func (r *reader) Close() error {
	r.closeBody()
	return nil
}

// contentRangeStart parses "bytes START-END/SIZE".
func contentRangeStart(v string) (int64, error) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, errors.New("not a byte range")
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, errors.New("no range")
	}
	return strconv.ParseInt(start, 10, 64)
}

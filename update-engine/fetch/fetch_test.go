package fetch

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/update-engine/transport"
)

// flakyServer serves data with Range support and cuts each response after cut bytes (0 means
// never) for the first cuts responses.
func flakyServer(t *testing.T, data []byte, cut int, cuts int32, ignoreRange bool) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		if ignoreRange {
			r.Header.Del("Range")
		}
		if cut > 0 && i <= cuts {
			// Serve through a writer that stops after cut bytes and drops the connection.
			w = &cutWriter{ResponseWriter: w, left: cut}
		}
		defer func() {
			if recover() != nil {
				panic(http.ErrAbortHandler)
			}
		}()
		http.ServeContent(w, r, "payload", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

type cutWriter struct {
	http.ResponseWriter
	left int
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if len(p) > c.left {
		c.ResponseWriter.Write(p[:c.left])
		c.left = 0
		panic(http.ErrAbortHandler)
	}
	c.left -= len(p)
	return c.ResponseWriter.Write(p)
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func noWait(time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

func TestResumeAcrossDrops(t *testing.T) {
	data := random(t, 3<<20)
	srv, hits := flakyServer(t, data, 700<<10, 3, false)
	s := &Source{URLs: []string{srv.URL + "/p"}, Length: int64(len(data)), HTTP: srv.Client(), Options: Options{After: noWait}}
	r, err := s.Open(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("payload differs after resumes")
	}
	if hits.Load() != 4 {
		t.Errorf("%d requests, want 4 (three cut)", hits.Load())
	}
	// Resume means nearly nothing was downloaded twice.
	if rcv := s.Received(); rcv > int64(len(data))*11/10 {
		t.Errorf("received %d bytes for a %d-byte payload", rcv, len(data))
	}
}

func TestOpenAtOffsetAndIgnoredRange(t *testing.T) {
	data := random(t, 1<<20)
	for _, ignore := range []bool{false, true} {
		srv, _ := flakyServer(t, data, 0, 0, ignore)
		s := &Source{URLs: []string{srv.URL}, Length: int64(len(data)), HTTP: srv.Client(), Options: Options{After: noWait}}
		r, err := s.Open(t.Context(), 12345)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data[12345:]) {
			t.Errorf("ignoreRange=%v: wrong bytes", ignore)
		}
	}
}

func TestFailover(t *testing.T) {
	data := random(t, 256<<10)
	good, _ := flakyServer(t, data, 0, 0, false)
	var badHits atomic.Int32
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		badHits.Add(1)
		http.Error(w, "gone", http.StatusNotFound)
	}))
	defer bad.Close()
	s := &Source{URLs: []string{bad.URL, good.URL}, Length: int64(len(data)), HTTP: http.DefaultClient, Options: Options{After: noWait, MaxFailuresPerURL: 2}}
	r, _ := s.Open(t.Context(), 0)
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("failover read: %v", err)
	}
	if badHits.Load() != 2 {
		t.Errorf("the failing URL was tried %d times, want 2", badHits.Load())
	}
}

func TestGiveUp(t *testing.T) {
	s := &Source{URLs: []string{"http://127.0.0.1:1/a", "http://127.0.0.1:1/b"}, Length: 10, HTTP: http.DefaultClient, Options: Options{After: noWait, MaxAttempts: 5}}
	r, _ := s.Open(t.Context(), 0)
	_, err := io.ReadAll(r)
	var te *TransferError
	if !errors.As(err, &te) || te.ErrorCode() != omaha.ErrorCodeDownloadTransferError {
		t.Fatalf("err = %v, want a TransferError", err)
	}
}

func TestBounds(t *testing.T) {
	data := random(t, 4096)
	srv, _ := flakyServer(t, data, 0, 0, false)
	// The source says the payload is shorter than what the server has: only Length bytes.
	s := &Source{URLs: []string{srv.URL}, Length: 1000, HTTP: srv.Client(), Options: Options{After: noWait, MaxAttempts: 2}}
	r, _ := s.Open(t.Context(), 0)
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data[:1000]) {
		t.Fatalf("bounded read: %d bytes, %v", len(got), err)
	}
	// Longer than the server has: the short body is a transfer error, not a silent success.
	s = &Source{URLs: []string{srv.URL}, Length: 8192, HTTP: srv.Client(), Options: Options{After: noWait, MaxAttempts: 3}}
	r, _ = s.Open(t.Context(), 0)
	if _, err := io.ReadAll(r); err == nil {
		t.Fatal("a short payload read without error")
	}
	// Policy.
	s = &Source{URLs: []string{"http://updates.example/p"}, Length: 1, HTTP: http.DefaultClient, CheckURL: transport.Config{}.CheckURL}
	if _, err := s.Open(t.Context(), 0); !errors.Is(err, transport.ErrInsecureURL) {
		t.Errorf("plain http URL: %v", err)
	}
}

func TestCancel(t *testing.T) {
	data := random(t, 1<<20)
	srv, _ := flakyServer(t, data, 0, 0, false)
	ctx, cancel := context.WithCancel(t.Context())
	s := &Source{URLs: []string{srv.URL}, Length: int64(len(data)), HTTP: srv.Client()}
	r, _ := s.Open(ctx, 0)
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(r); !errors.Is(err, context.Canceled) {
		t.Errorf("after cancel: %v", err)
	}
}

// tick is one wait a Source asked its clock for.
type tick struct {
	d  time.Duration
	ch chan time.Time
}

// handClock is an Options.After whose waits end only when the test fires them.
func handClock() (func(time.Duration) <-chan time.Time, chan tick) {
	asked := make(chan tick, 64)
	return func(d time.Duration) <-chan time.Time {
		t := tick{d: d, ch: make(chan time.Time, 1)}
		asked <- t
		return t.ch
	}, asked
}

// TestStallResumes: a server that sends part of the body and then nothing holds the
// transfer only until a low-speed window passes without enough bytes; the next attempt asks
// for the rest with Range.
func TestStallResumes(t *testing.T) {
	data := random(t, 64<<10)
	const sent = 4096
	var ranges []string
	var hits atomic.Int32
	rangeSeen := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rangeSeen <- r.Header.Get("Range")
		if hits.Add(1) == 1 {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.Write(data[:sent])
			w.(http.Flusher).Flush()
			<-r.Context().Done() // stalled until the client gives up on this connection
			return
		}
		http.ServeContent(w, r, "payload", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	const window, backoff = time.Minute, time.Second
	after, asked := handClock()
	s := &Source{URLs: []string{srv.URL}, Length: int64(len(data)), HTTP: srv.Client(),
		Options: Options{After: after, WindowAfter: after, Backoff: backoff, LowSpeedLimit: 10, LowSpeedTime: window}}
	r, err := s.Open(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	head := make([]byte, sent)
	if _, err := io.ReadFull(r, head); err != nil || !bytes.Equal(head, data[:sent]) {
		t.Fatalf("the first %d bytes: %v", sent, err)
	}
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(r)
		done <- result{b, err}
	}()
	// The first window saw the 4096 bytes, the second none: the connection is cut. Backoff
	// waits pass at once; the second connection's windows never end, so it cannot be cut.
	windows := 0
	guard := time.NewTimer(10 * time.Second) // a failure deadline, not a wait for progress
	defer guard.Stop()
	for {
		select {
		case tk := <-asked:
			switch {
			case tk.d == backoff:
				tk.ch <- time.Time{}
			case tk.d == window && windows < 2:
				windows++
				tk.ch <- time.Time{}
			}
		case res := <-done:
			if res.err != nil {
				t.Fatalf("after the stall: %v", res.err)
			}
			if !bytes.Equal(res.b, data[sent:]) {
				t.Fatal("payload differs after the resume")
			}
			for len(rangeSeen) > 0 {
				ranges = append(ranges, <-rangeSeen)
			}
			if want := []string{"", "bytes=4096-"}; strings.Join(ranges, "|") != strings.Join(want, "|") {
				t.Errorf("requests with Range %q, want %q", ranges, want)
			}
			if windows != 2 {
				t.Errorf("%d low-speed windows passed, want 2", windows)
			}
			return
		case <-guard.C:
			t.Fatal("a stalled transfer was still waiting: no low-speed limit ended it")
		}
	}
}

// TestStallBeforeBody: headers and then nothing is a stall too; and once the reader is done,
// no watchdog goroutine is left.
func TestStallBeforeBody(t *testing.T) {
	data := random(t, 8<<10)
	var hits atomic.Int32
	headersSent := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			close(headersSent)
			<-r.Context().Done()
			return
		}
		http.ServeContent(w, r, "payload", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	const window, backoff = time.Minute, time.Second
	after, asked := handClock()
	s := &Source{URLs: []string{srv.URL}, Length: int64(len(data)), HTTP: srv.Client(),
		Options: Options{After: after, WindowAfter: after, Backoff: backoff, LowSpeedTime: window}}
	r, err := s.Open(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close() // on failure, ends the stalled connection so the server can close
	done := make(chan error, 1)
	go func() {
		got, err := io.ReadAll(r)
		if err == nil && !bytes.Equal(got, data) {
			err = errors.New("payload differs after the resume")
		}
		done <- err
	}()
	windows := 0
	guard := time.NewTimer(10 * time.Second) // a failure deadline, not a wait for progress
	defer guard.Stop()
	for windows >= 0 {
		select {
		case tk := <-asked:
			switch {
			case tk.d == backoff:
				tk.ch <- time.Time{}
			case tk.d == window && windows == 0:
				// The first connection's first window ends once the server has sent the
				// headers: no body byte came, so the connection is cut.
				select {
				case <-headersSent:
				case <-guard.C:
					t.Fatal("the server never got the first request")
				}
				windows++
				tk.ch <- time.Time{}
			}
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			windows = -1
		case <-guard.C:
			t.Fatal("a transfer with no body bytes was still waiting")
		}
	}
	if hits.Load() != 2 {
		t.Errorf("%d requests, want 2", hits.Load())
	}
	r.Close()
	buf := make([]byte, 1<<20)
	if st := string(buf[:runtime.Stack(buf, true)]); strings.Contains(st, "fetch.(*Source).watch") {
		t.Errorf("a watchdog goroutine outlived its reader:\n%s", st)
	}
}

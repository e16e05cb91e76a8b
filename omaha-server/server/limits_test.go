package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

func sqliteStore(t *testing.T, now func() time.Time) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), sqlite.FileName), now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// metric reads one sample from reg: the metric called name whose labels include every
// label=value pair of labels ("" matches a metric without labels); -1 when absent.
func metric(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return -1
}

// trickle writes head, then one byte of filler every interval until stop is closed or a
// write fails (the attacker of a slow-body attack), and closes done when it stops.
func trickle(conn net.Conn, head string, interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	if _, err := io.WriteString(conn, head); err != nil {
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
		}
	}
}

// TestSlowBodyIsCut: a client that sends its headers and then trickles the body gets its
// request ended at the route's read deadline (Omaha, admin JSON and upload each have their
// own), and the timeout is counted per route. Without a deadline the server waits for the
// body for as long as the client keeps sending, and the client's own bound fails the test.
func TestSlowBodyIsCut(t *testing.T) {
	st := sqliteStore(t, nil)
	f := newFixtureConfig(t, st, server.Config{Limits: server.Limits{
		OmahaReadTimeout: 150 * time.Millisecond, ReadTimeout: 250 * time.Millisecond, UploadReadTimeout: 350 * time.Millisecond,
	}})
	f.setup()
	tok := token(t, st, store.RoleAdmin)
	tests := []struct {
		name, route, head string
	}{
		{"omaha", "/v1/update/", "POST /v1/update/ HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 1048576\r\n\r\n<request"},
		{"admin JSON", "/api/v1/apps", "POST /api/v1/apps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok +
			"\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{"},
		{"upload", "/api/v1/apps/{app}/releases", "POST /api/v1/apps/" + store.FlatcarAppID + "/releases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok +
			"\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 100000000\r\n\r\n--B\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n" +
			`{"version":"4081.9.0","board":"amd64-usr","file_name":"p.gz","size":99999000}` +
			"\r\n--B\r\nContent-Disposition: form-data; name=\"payload\"; filename=\"p.gz\"\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			stop, done := make(chan struct{}), make(chan struct{})
			go trickle(conn, tt.head, 20*time.Millisecond, stop, done)
			defer func() { close(stop); <-done }()
			// The bound of the test, not a wait: the server must end the request long
			// before.
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			start := time.Now()
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode < 400 {
					t.Errorf("HTTP %d for a body that never arrived", resp.StatusCode)
				}
				// After the answer the server closes the connection.
				_, err = br.ReadByte()
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the server still held the connection after %v", time.Since(start).Round(time.Millisecond))
			}
			if got := metric(t, f.handler.(*server.Server).Registry(), "switchyard_omaha_server_request_read_timeouts_total", "route", tt.route); got != 1 {
				t.Errorf("read timeouts of %s: %v, want 1", tt.route, got)
			}
		})
	}
	if _, err := st.GetRelease(context.Background(), store.FlatcarAppID, "4081.9.0", "amd64-usr"); err == nil {
		t.Error("the cut upload was recorded")
	}
}

// TestUploadOutlivesTheShortDeadlines: an upload whose body takes longer than the Omaha
// and admin deadlines completes under its own.
func TestUploadOutlivesTheShortDeadlines(t *testing.T) {
	st := sqliteStore(t, nil)
	f := newFixtureConfig(t, st, server.Config{Limits: server.Limits{
		OmahaReadTimeout: 50 * time.Millisecond, ReadTimeout: 50 * time.Millisecond, UploadReadTimeout: time.Minute,
	}})
	f.setup()
	tok := token(t, st, store.RoleAdmin)
	payload := strings.Repeat("p", 10)
	meta := `{"version":"4081.9.0","board":"amd64-usr","file_name":"p.gz","size":10}`
	body := "--B\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n" + meta +
		"\r\n--B\r\nContent-Disposition: form-data; name=\"payload\"; filename=\"p.gz\"\r\n\r\n" + payload + "\r\n--B--\r\n"
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/apps/%s/releases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: multipart/form-data; boundary=B\r\nContent-Length: %d\r\n\r\n", store.FlatcarAppID, tok, len(body))
	// The body in 10 pieces, 25 ms apart: 250 ms, five times the short deadlines.
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < len(body); {
		<-tick.C
		n := min(len(body)-i, len(body)/10+1)
		if _, err := io.WriteString(conn, body[i:i+n]); err != nil {
			t.Fatal(err)
		}
		i += n
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("slow upload: HTTP %d %s", resp.StatusCode, out)
	}
}

// TestConnectionLimit: with MaxConns 2, a third connection is closed on accept and
// counted; connections held by slow headers keep their slots.
func TestConnectionLimit(t *testing.T) {
	st := sqliteStore(t, nil)
	s, err := server.New(t.Context(), server.Config{DataDir: t.TempDir(), Limits: server.Limits{MaxConns: 2}}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ts := httptest.NewUnstartedServer(s)
	ts.Config.ConnState = s.ConnState
	ts.Start()
	defer ts.Close()
	addr := strings.TrimPrefix(ts.URL, "http://")
	// Two connections hold the slots with headers that never end. The server accepts in
	// order, so both are counted before the third arrives.
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "POST /v1/update/ HTTP/1.1\r\n")
	}
	third, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	io.WriteString(third, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	third.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := third.Read(make([]byte, 1))
	if n != 0 || err == nil {
		t.Fatalf("third connection: read %d bytes, %v; want it closed", n, err)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("third connection: still open")
	}
	if got := metric(t, s.Registry(), "switchyard_omaha_server_connections_refused_total"); got != 1 {
		t.Errorf("refused connections: %v, want 1", got)
	}
	if got := metric(t, s.Registry(), "switchyard_omaha_server_connections_open"); got != 2 {
		t.Errorf("open connections: %v, want 2", got)
	}
}

// TestConnStateReleasesSlots drives ConnState by hand: a closed or hijacked connection
// frees its slot, a refused one never held one.
func TestConnStateReleasesSlots(t *testing.T) {
	s, err := server.New(t.Context(), server.Config{DataDir: t.TempDir(), Limits: server.Limits{MaxConns: 2}}, sqliteStore(t, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn := func() net.Conn {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		return a
	}
	open := func() float64 { return metric(t, s.Registry(), "switchyard_omaha_server_connections_open") }
	refused := func() float64 { return metric(t, s.Registry(), "switchyard_omaha_server_connections_refused_total") }
	c1, c2, c3, c4, c5 := conn(), conn(), conn(), conn(), conn()
	s.ConnState(c1, http.StateNew)
	s.ConnState(c2, http.StateNew)
	s.ConnState(c3, http.StateNew) // refused and closed
	if open() != 2 || refused() != 1 {
		t.Fatalf("after three: open %v refused %v", open(), refused())
	}
	if _, err := c3.Write([]byte("x")); err == nil {
		t.Error("the refused connection is still open")
	}
	s.ConnState(c3, http.StateClosed) // the server's own close of the refused one
	s.ConnState(c1, http.StateActive)
	s.ConnState(c1, http.StateClosed)
	s.ConnState(c4, http.StateNew)
	if open() != 2 || refused() != 1 {
		t.Fatalf("after a close and a new one: open %v refused %v", open(), refused())
	}
	s.ConnState(c2, http.StateHijacked)
	s.ConnState(c5, http.StateNew)
	if open() != 2 || refused() != 1 {
		t.Fatalf("after a hijack and a new one: open %v refused %v", open(), refused())
	}
}

// TestOmahaRateLimit: a source gets OmahaBurst requests at once, then OmahaRate per
// second; the one above is 429 with Retry-After and stores nothing.
func TestOmahaRateLimit(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC).UnixMilli())
	clock := func() time.Time { return time.UnixMilli(now.Load()) }
	st := sqliteStore(t, clock)
	f := newFixtureConfig(t, st, server.Config{Now: clock, Limits: server.Limits{OmahaRate: 0.5, OmahaBurst: 3}})
	f.setup()
	check := func(machine string) *http.Response {
		body, _ := omaha.NewUpdateCheckRequest(host(machine, "4081.1.0"), false).Marshal()
		resp, err := http.Post(f.srv.URL+"/v1/update/", "text/xml", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for i := range 3 {
		if resp := check(fmt.Sprintf("rl-%d", i)); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d of the burst: HTTP %d", i, resp.StatusCode)
		}
	}
	resp := check("rl-over")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("over the burst: HTTP %d, Retry-After %q; want 429, 2", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if _, err := st.GetInstances(context.Background(), "rl-over", 0); err == nil {
		t.Error("a rate-limited request was stored")
	}
	if got := metric(t, f.handler.(*server.Server).Registry(), "switchyard_omaha_server_rate_limited_requests_total"); got != 1 {
		t.Errorf("rate-limited requests: %v", got)
	}
	// Two seconds later one more token is there; the admin API is not limited.
	now.Add(2000)
	if resp := check("rl-later"); resp.StatusCode != http.StatusOK {
		t.Errorf("after the refill: HTTP %d", resp.StatusCode)
	}
	if resp := check("rl-later-2"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("second after the refill: HTTP %d", resp.StatusCode)
	}
	if _, err := f.admin.ListApps(context.Background()); err != nil {
		t.Errorf("admin API while Omaha is limited: %v", err)
	}
}

// TestOmahaRequestBounds: more apps per request or events per app than the limits is
// HTTP 400 and stores nothing (the defaults: 4 apps, 8 events).
func TestOmahaRequestBounds(t *testing.T) {
	st := sqliteStore(t, nil)
	f := newFixture(t, st)
	f.setup()
	build := func(apps, events int) []byte {
		var b strings.Builder
		b.WriteString(`<request protocol="3.0">`)
		for a := range apps {
			fmt.Fprintf(&b, `<app appid="%s" version="4081.1.0" track="stable" board="amd64-usr" machineid="bound-%d">`, omaha.FlatcarAppID, a)
			for range events {
				b.WriteString(`<event eventtype="3" eventresult="2" previousversion=""/>`)
			}
			b.WriteString(`</app>`)
		}
		b.WriteString(`</request>`)
		return []byte(b.String())
	}
	tests := []struct {
		name         string
		apps, events int
		want         int
	}{
		{"within", server.DefaultMaxOmahaApps, server.DefaultMaxOmahaEvents, http.StatusOK},
		{"one app too many", server.DefaultMaxOmahaApps + 1, 1, http.StatusBadRequest},
		{"one event too many", 1, server.DefaultMaxOmahaEvents + 1, http.StatusBadRequest},
		{"64 apps", 64, 1, http.StatusBadRequest},
		{"the 64 x 32 flood, over the body cap", 64, 32, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(ok(f.admin.ListInstances(context.Background(), store.InstanceFilter{}))(t))
			code, body := f.post(build(tt.apps, tt.events))
			if code != tt.want {
				t.Fatalf("HTTP %d, want %d: %.200s", code, tt.want, body)
			}
			after := len(ok(f.admin.ListInstances(context.Background(), store.InstanceFilter{}))(t))
			if tt.want != http.StatusOK && after != before {
				t.Errorf("a refused request stored %d instances", after-before)
			}
		})
	}
}

// TestRetentionOnByDefault: a Maintenance without retention settings prunes instances not
// seen for longer than DefaultRetainInstances; a negative setting keeps them.
func TestRetentionOnByDefault(t *testing.T) {
	for _, tt := range []struct {
		name     string
		retain   time.Duration
		wantGone bool
	}{
		{"default", 0, true},
		{"kept", -1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var now atomic.Int64
			now.Store(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC).UnixMilli())
			clock := func() time.Time { return time.UnixMilli(now.Load()) }
			st := sqliteStore(t, clock)
			f := newFixtureConfig(t, st, server.Config{Now: clock})
			f.setup()
			f.send(omaha.NewUpdateCheckRequest(host("gone-quiet", "4081.1.0"), false))
			now.Add((server.DefaultRetainInstances + 24*time.Hour).Milliseconds())

			ctx, cancel := context.WithCancel(context.Background())
			pruned := make(chan error, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				server.RunMaintenance(ctx, pruneSignal{Store: st, pruned: pruned},
					server.Maintenance{SampleEvery: -1, RetainInstances: tt.retain, RetainEvents: tt.retain, RetainActivity: tt.retain, Now: clock})
			}()
			var ran bool
			if tt.wantGone {
				// A bound for the failure, not a wait: retention runs at start.
				select {
				case err := <-pruned:
					ran = true
					if err != nil {
						t.Fatal(err)
					}
				case <-time.After(10 * time.Second):
				}
			}
			cancel()
			<-done
			select {
			case <-pruned:
				ran = true
			default:
			}
			if ran != tt.wantGone {
				t.Errorf("retention ran: %v, want %v", ran, tt.wantGone)
			}
			_, err := st.GetInstances(context.Background(), "gone-quiet", 0)
			if gone := err != nil; gone != tt.wantGone {
				t.Errorf("instance gone: %v (%v), want %v", gone, err, tt.wantGone)
			}
		})
	}
}

// pruneSignal is a store that reports each Prune result on pruned (dropping results
// nobody waits for).
type pruneSignal struct {
	store.Store
	pruned chan<- error
}

func (s pruneSignal) Prune(ctx context.Context, r store.Retention) (store.Pruned, error) {
	p, err := s.Store.Prune(ctx, r)
	select {
	case s.pruned <- err:
	default:
	}
	return p, err
}

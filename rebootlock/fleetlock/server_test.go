package fleetlock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchyard-os/switchyard/rebootlock"
	"github.com/switchyard-os/switchyard/rebootlock/etcdtest"
)

func startEtcd(t *testing.T) string { return etcdtest.Start(t) }

type fixture struct {
	srv  *httptest.Server
	cli  *clientv3.Client
	opts rebootlock.Options
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cli, err := rebootlock.NewClient(rebootlock.EtcdConfig{Endpoints: []string{startEtcd(t)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	opts := rebootlock.Options{Prefix: "/fl", Logger: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(http.StripPrefix("/fleetlock", NewHandler(cli, opts)))
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, cli: cli, opts: opts}
}

func (f *fixture) sem(t *testing.T, group string) *rebootlock.Semaphore {
	s, err := rebootlock.New(f.cli, group, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// zincatiBody is the body as Zincati sends it (pretty-printed JSON).
func zincatiBody(id, group string) string {
	return fmt.Sprintf("{\n  \"client_params\": {\n    \"id\": %q,\n    \"group\": %q\n  }\n}", id, group)
}

func TestProtocol(t *testing.T) {
	f := newFixture(t)
	if _, err := f.sem(t, "workers").SetMax(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		method   string
		path     string
		noHeader bool
		body     string
		status   int
		kind     string
	}{
		{name: "lock a", path: PreReboot, body: zincatiBody("a", "workers"), status: 200},
		{name: "lock a again (recursive)", path: PreReboot, body: zincatiBody("a", "workers"), status: 200},
		{name: "lock b", path: PreReboot, body: zincatiBody("b", "workers"), status: 200},
		{name: "lock c: full", path: PreReboot, body: zincatiBody("c", "workers"), status: 409, kind: "failed_lock_semaphore_full"},
		{name: "ids are case-sensitive", path: PreReboot, body: zincatiBody("A", "workers"), status: 409, kind: "failed_lock_semaphore_full"},
		{name: "unlock a", path: SteadyState, body: zincatiBody("a", "workers"), status: 200},
		{name: "unlock a again", path: SteadyState, body: zincatiBody("a", "workers"), status: 200},
		{name: "unlock a non-holder", path: SteadyState, body: zincatiBody("zz", "workers"), status: 200},
		{name: "lock c now", path: PreReboot, body: zincatiBody("c", "workers"), status: 200},
		{name: "other group is separate (default max 1)", path: PreReboot, body: zincatiBody("a", "default"), status: 200},
		{name: "unknown fields are ignored", path: PreReboot, body: `{"client_params":{"id":"x","group":"g2","extra":1},"v":2}`, status: 200},
		{name: "no header", path: PreReboot, noHeader: true, body: zincatiBody("d", "workers"), status: 400, kind: "missing_protocol_header"},
		{name: "GET", method: http.MethodGet, path: PreReboot, status: 405, kind: "method_not_allowed"},
		{name: "PUT", method: http.MethodPut, path: SteadyState, body: zincatiBody("d", "workers"), status: 405, kind: "method_not_allowed"},
		{name: "unknown path", path: "/v2/pre-reboot", body: zincatiBody("d", "workers"), status: 404, kind: "not_found"},
		{name: "not JSON", path: PreReboot, body: "id=d", status: 400, kind: "invalid_body"},
		{name: "no client_params", path: PreReboot, body: `{"id":"d"}`, status: 400, kind: "invalid_body"},
		{name: "empty id", path: PreReboot, body: zincatiBody("", "workers"), status: 400, kind: "invalid_client_identity"},
		{name: "id with slash", path: PreReboot, body: zincatiBody("a/b", "workers"), status: 400, kind: "invalid_client_identity"},
		{name: "id with a space (the spec allows any text)", path: PreReboot, body: zincatiBody("web 1", "spaced"), status: 200},
		{name: "unicode id", path: SteadyState, body: zincatiBody("hôte 节点", "spaced"), status: 200},
		{name: "id with a newline", path: PreReboot, body: zincatiBody("a\nb", "workers"), status: 400, kind: "invalid_client_identity"},
		{name: "id with a control character", path: PreReboot, body: `{"client_params":{"id":"a\u0007","group":"workers"}}`, status: 400, kind: "invalid_client_identity"},
		{name: "empty group", path: PreReboot, body: zincatiBody("d", ""), status: 400, kind: "invalid_group"},
		{name: "group with slash", path: SteadyState, body: zincatiBody("d", "a/b"), status: 400, kind: "invalid_group"},
		{name: "unicode group", path: PreReboot, body: zincatiBody("d", "gruppé"), status: 400, kind: "invalid_group"},
		{name: "huge body", path: PreReboot, body: `{"client_params":{"id":"` + strings.Repeat("x", MaxBody) + `"}}`, status: 413, kind: "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			req, _ := http.NewRequestWithContext(t.Context(), method, f.srv.URL+"/fleetlock"+tt.path, strings.NewReader(tt.body))
			if !tt.noHeader {
				req.Header.Set(Header, "true")
			}
			resp, err := f.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, b, tt.status)
			}
			if tt.kind != "" {
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("error Content-Type %q, want application/json", ct)
				}
				// The spec's error body is exactly {"kind": ..., "value": ...}.
				var body map[string]any
				if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
					t.Fatalf("error body is not JSON: %v", err)
				}
				kind, _ := body["kind"].(string)
				value, _ := body["value"].(string)
				if len(body) != 2 || kind != tt.kind || value == "" {
					t.Fatalf("error body %v, want exactly kind %q and a value", body, tt.kind)
				}
			}
		})
	}
	st, err := f.sem(t, "workers").Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Holders) != 2 || !st.Holding("b") || !st.Holding("c") || st.Holders[0].Via != "fleetlock" {
		t.Fatalf("final holders: %+v", st.Holders)
	}
	if st.Holders[0].Alive {
		t.Fatalf("a FleetLock holder must not show liveness: %+v", st.Holders[0])
	}
}

func TestClient(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	a, err := NewClient(f.srv.URL+"/fleetlock/", "default", "host-a", f.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewClient(f.srv.URL+"/${group}", "default", "host-b", f.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Lock(ctx); err != nil {
		t.Fatalf("recursive lock: %v", err)
	}
	// b's base URL is templated to /default, outside the mount point.
	var e *Error
	if err := b.Lock(ctx); !errors.As(err, &e) || e.Status != 404 || e.Kind != "generic_http_404" {
		t.Fatalf("templated base URL: %v", err)
	}
	b, _ = NewClient(f.srv.URL+"/fleetlock", "default", "host-b", f.srv.Client())
	if err := b.Lock(ctx); !IsFull(err) {
		t.Fatalf("second host with max 1: %v, want IsFull", err)
	}
	if err := a.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Unlock(ctx); err != nil {
		t.Fatalf("unlock of a non-holder: %v", err)
	}
}

func TestClientErrors(t *testing.T) {
	for name, args := range map[string][3]string{
		"bad group": {"http://x", "a/b", "id"},
		"empty id":  {"http://x", "g", ""},
		"bad url":   {"ftp://x", "g", "id"},
		"no host":   {"http://", "g", "id"},
	} {
		if _, err := NewClient(args[0], args[1], args[2], http.DefaultClient); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := NewClient("http://x", "g", "id", nil); err == nil {
		t.Error("nil HTTP client: no error")
	}
	// A proxy answering with HTML: kind generic_http_502, as Zincati reports it.
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
	}))
	defer html.Close()
	c, _ := NewClient(html.URL, "g", "id", html.Client())
	var e *Error
	if err := c.Lock(t.Context()); !errors.As(err, &e) || e.Kind != "generic_http_502" {
		t.Fatalf("non-JSON error: %v", err)
	}
	// Nothing listening.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	c, _ = NewClient("http://"+addr, "g", "id", &http.Client{Timeout: time.Second})
	if err := c.Unlock(t.Context()); err == nil {
		t.Fatal("no server: no error")
	}
}

func TestServerEtcdUnreachable(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	cli, err := rebootlock.NewClient(rebootlock.EtcdConfig{Endpoints: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	srv := httptest.NewServer(NewHandler(cli, rebootlock.Options{Logger: slog.New(slog.DiscardHandler), OpTimeout: 200 * time.Millisecond}))
	defer srv.Close()
	c, _ := NewClient(srv.URL, "default", "h", srv.Client())
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var e *Error
	if err := c.Lock(ctx); !errors.As(err, &e) || e.Status != 503 || e.Kind != "failed_lock" {
		t.Fatalf("lock with etcd down: %v", err)
	}
	if err := c.Unlock(ctx); !errors.As(err, &e) || e.Status != 503 || e.Kind != "failed_unlock" {
		t.Fatalf("unlock with etcd down: %v", err)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(zincatiBody("a", "default"))
	f.Add(`{"client_params":{"id":"x","group":"a.b-c"}}`)
	f.Add(`{"client_params":null}`)
	f.Add(`{"client_params":{"id":"\u0000","group":"é"}}`)
	f.Fuzz(func(t *testing.T, body string) {
		p, e := decodeRequest(strings.NewReader(body))
		if e != nil {
			if e.Status < 400 || e.Kind == "" || e.Value == "" {
				t.Fatalf("error without status, kind or value: %+v", e)
			}
			return
		}
		if rebootlock.ValidateID(p.ID) != nil || rebootlock.ValidateGroup(p.Group) != nil {
			t.Fatalf("accepted invalid params %+v", p)
		}
	})
}

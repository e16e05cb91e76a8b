package loadgen

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
)

// seenRequest is what the independent test server reads from each request, with its own
// minimal decoding (not the omaha package's), so loadgen's requests are judged by a second
// reader.
type seenRequest struct {
	Protocol string `xml:"protocol,attr"`
	Apps     []struct {
		AppID     string    `xml:"appid,attr"`
		Version   string    `xml:"version,attr"`
		MachineID string    `xml:"machineid,attr"`
		Board     string    `xml:"board,attr"`
		Track     string    `xml:"track,attr"`
		Ping      *struct{} `xml:"ping"`
		Check     *struct{} `xml:"updatecheck"`
		Events    []struct {
			Type      int    `xml:"eventtype,attr"`
			Result    int    `xml:"eventresult,attr"`
			ErrorCode string `xml:"errorcode,attr"`
			Previous  string `xml:"previousversion,attr"`
		} `xml:"event"`
	} `xml:"app"`
}

// noUpdateServer answers every request with a hand-written noupdate response (ping and event
// acks as asked) and records what it saw.
type noUpdateServer struct {
	mu       sync.Mutex
	requests int
	machines map[string]int
	problems []string
}

func (s *noUpdateServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var req seenRequest
	err := xml.Unmarshal(body, &req)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	switch {
	case err != nil:
		s.problems = append(s.problems, "unparsable: "+err.Error())
	case r.Method != http.MethodPost || r.URL.Path != "/v1/update/" || r.Header.Get("Content-Type") != "text/xml":
		s.problems = append(s.problems, fmt.Sprintf("%s %s %s", r.Method, r.URL.Path, r.Header.Get("Content-Type")))
	case req.Protocol != "3.0" || len(req.Apps) != 1:
		s.problems = append(s.problems, "not one app of protocol 3.0")
	}
	if err != nil || len(req.Apps) != 1 {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	app := req.Apps[0]
	if app.AppID != omaha.FlatcarAppID || app.Board != "amd64-usr" || app.Track != "stable" || len(app.MachineID) != 32 {
		s.problems = append(s.problems, fmt.Sprintf("app %+v", app))
	}
	s.machines[app.MachineID]++
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><response protocol="3.0" server="test"><daystart elapsed_seconds="0"></daystart>`)
	fmt.Fprintf(&b, `<app appid="%s" status="ok">`, app.AppID)
	if app.Ping != nil {
		b.WriteString(`<ping status="ok"></ping>`)
	}
	if app.Check != nil {
		b.WriteString(`<updatecheck status="noupdate"></updatecheck>`)
	}
	for range app.Events {
		b.WriteString(`<event status="ok"></event>`)
	}
	b.WriteString(`</app></response>`)
	w.Header().Set("Content-Type", "text/xml")
	io.WriteString(w, b.String())
}

func TestRunNoUpdate(t *testing.T) {
	tests := []struct {
		name        string
		hosts, conc int
		requests    int
	}{
		{"one host", 1, 1, 20},
		{"many hosts", 250, 8, 1000},
		{"concurrency above hosts", 3, 16, 30},
		{"round robin", 7, 1, 70},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &noUpdateServer{machines: map[string]int{}}
			srv := httptest.NewServer(s)
			defer srv.Close()
			rep, err := Run(context.Background(), Config{
				BaseURL: srv.URL, Client: srv.Client(),
				Hosts: tt.hosts, Concurrency: tt.conc, Requests: tt.requests,
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(s.problems) > 0 {
				t.Fatalf("server saw problems: %v", s.problems[:min(3, len(s.problems))])
			}
			if rep.Errors != 0 {
				t.Fatalf("errors: %d %v", rep.Errors, rep.ErrorSamples)
			}
			if rep.Requests != int64(tt.requests) || s.requests != tt.requests || rep.Checks != int64(tt.requests) {
				t.Errorf("requests %d, server saw %d, checks %d; want %d", rep.Requests, s.requests, rep.Checks, tt.requests)
			}
			if len(s.machines) != min(tt.hosts, tt.requests) {
				t.Errorf("%d distinct machine ids, want %d", len(s.machines), tt.hosts)
			}
			// One worker visits its hosts in turn, so each gets exactly its share.
			for id, n := range s.machines {
				if tt.conc == 1 && n != tt.requests/tt.hosts {
					t.Errorf("machine %s got %d requests, want %d", id, n, tt.requests/tt.hosts)
				}
			}
			if rep.Offers != 0 || rep.Updated != 0 {
				t.Errorf("offers %d updated %d from a noupdate server", rep.Offers, rep.Updated)
			}
			if rep.CheckLatency.Count() != uint64(tt.requests) || rep.P50 <= 0 || rep.P50 > rep.P99 || rep.P99 > rep.CheckLatency.Max() {
				t.Errorf("latency: count %d p50 %v p99 %v max %v", rep.CheckLatency.Count(), rep.P50, rep.P99, rep.CheckLatency.Max())
			}
			if rep.ChecksPerSecond <= 0 || rep.Elapsed <= 0 {
				t.Errorf("throughput %v over %v", rep.ChecksPerSecond, rep.Elapsed)
			}
			t.Log(rep)
		})
	}
}

func TestRunSameSeedSameFleet(t *testing.T) {
	fleet := func(seed uint64) map[string]int {
		s := &noUpdateServer{machines: map[string]int{}}
		srv := httptest.NewServer(s)
		defer srv.Close()
		if _, err := Run(context.Background(), Config{BaseURL: srv.URL, Client: srv.Client(), Hosts: 20, Concurrency: 1, Requests: 20, Seed: seed}); err != nil {
			t.Fatal(err)
		}
		return s.machines
	}
	a, b, c := fleet(1), fleet(1), fleet(2)
	for id := range a {
		if b[id] == 0 {
			t.Errorf("seed 1 twice gave different fleets")
		}
		if c[id] != 0 {
			t.Errorf("seeds 1 and 2 share machine id %s", id)
		}
	}
}

// flowServer wraps Baseline and records each host's requests as short strings.
type flowServer struct {
	base Baseline
	mu   sync.Mutex
	seq  map[string][]string
}

func (s *flowServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req seenRequest
	if err := xml.Unmarshal(body, &req); err == nil && len(req.Apps) == 1 {
		a := req.Apps[0]
		var step string
		switch {
		case a.Check != nil:
			step = "check@" + a.Version
			for _, e := range a.Events {
				step += fmt.Sprintf(" %d/%d(%s)", e.Type, e.Result, e.Previous)
			}
		case a.Ping != nil:
			step = "ping"
		default:
			for _, e := range a.Events {
				step += fmt.Sprintf("%d/%d", e.Type, e.Result)
				if e.ErrorCode != "" {
					step += " errorcode=" + e.ErrorCode
				}
			}
		}
		s.mu.Lock()
		s.seq[a.MachineID] = append(s.seq[a.MachineID], step)
		s.mu.Unlock()
	}
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	s.base.ServeHTTP(w, r)
}

func testOffer() *omaha.Offer {
	return &omaha.Offer{
		Version: "4100.0.0",
		URLs:    []string{"http://127.0.0.1/payloads/"},
		Package: omaha.Package{Name: "payload.sy", Size: 1234},
		SHA256:  make([]byte, 32),
	}
}

func TestRunUpdateFlow(t *testing.T) {
	tests := []struct {
		name        string
		failPercent int
		want        []string // one host's requests, in order
		updated     int64
	}{
		{
			name: "every host updates",
			want: []string{
				"check@4081.2.0 3/2()", "13/1", "14/1", "3/1", "ping",
				"check@4100.0.0 3/2(4081.2.0)", "check@4100.0.0 3/2()",
			},
			updated: 4,
		},
		{
			name: "every host fails", failPercent: 100,
			want: []string{
				"check@4081.2.0 3/2()", "13/1", "3/0 errorcode=9",
				"check@4081.2.0 3/2()", "13/1", "3/0 errorcode=9",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &flowServer{base: Baseline{Offer: testOffer()}, seq: map[string][]string{}}
			srv := httptest.NewServer(s)
			defer srv.Close()
			rep, err := Run(context.Background(), Config{
				BaseURL: srv.URL, Client: srv.Client(), Hosts: 4, Concurrency: 1,
				Requests: 4 * len(tt.want), FailPercent: tt.failPercent,
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Errors != 0 {
				t.Fatalf("errors: %v", rep.ErrorSamples)
			}
			if rep.Updated != tt.updated {
				t.Errorf("updated = %d, want %d", rep.Updated, tt.updated)
			}
			if len(s.seq) != 4 {
				t.Fatalf("%d hosts seen", len(s.seq))
			}
			for id, got := range s.seq {
				if strings.Join(got, " | ") != strings.Join(tt.want, " | ") {
					t.Errorf("host %s:\n got  %s\n want %s", id, strings.Join(got, " | "), strings.Join(tt.want, " | "))
				}
			}
			if rep.Checks+rep.Pings+rep.Events != rep.Requests {
				t.Errorf("checks %d + pings %d + events %d != requests %d", rep.Checks, rep.Pings, rep.Events, rep.Requests)
			}
		})
	}
}

func TestRunCountsBadAnswers(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string // in the error samples
	}{
		{"server error", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, "500 Internal Server Error"},
		{"not xml", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }, "malformed"},
		{"wrong app", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `<response protocol="3.0"><app appid="other" status="ok"/></response>`)
		}, "no app"},
		{"error status", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `<response protocol="3.0"><app appid="`+omaha.FlatcarAppID+`" status="error-internal"><updatecheck status="error-internal"/></app></response>`)
		}, "error-internal"},
		{"no ping ack", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `<response protocol="3.0"><app appid="`+omaha.FlatcarAppID+`" status="ok"><updatecheck status="noupdate"/><event status="ok"/></app></response>`)
		}, "ping not acknowledged"},
		{"missing event ack", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `<response protocol="3.0"><app appid="`+omaha.FlatcarAppID+`" status="ok"><ping status="ok"/><updatecheck status="noupdate"/></app></response>`)
		}, "0 event acks for 1 events"},
		{"offer without hash", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `<response protocol="3.0"><app appid="`+omaha.FlatcarAppID+`" status="ok"><ping status="ok"/><updatecheck status="ok"><urls><url codebase="http://a/"/></urls><manifest version="4100.0.0"><packages><package name="p" size="1"/></packages></manifest></updatecheck><event status="ok"/></app></response>`)
		}, "postinstall"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			rep, err := Run(context.Background(), Config{BaseURL: srv.URL, Client: srv.Client(), Hosts: 5, Concurrency: 2, Requests: 10})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Errors != 10 || rep.Checks != 0 || rep.Requests != 10 {
				t.Fatalf("errors %d checks %d requests %d, want 10 0 10", rep.Errors, rep.Checks, rep.Requests)
			}
			if len(rep.ErrorSamples) == 0 || !strings.Contains(strings.Join(rep.ErrorSamples, "\n"), tt.want) {
				t.Errorf("error samples %q lack %q", rep.ErrorSamples, tt.want)
			}
		})
	}
}

func TestRunUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	rep, err := Run(context.Background(), Config{BaseURL: url, Client: &http.Client{Timeout: time.Second}, Hosts: 2, Requests: 4})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 4 || rep.Checks != 0 {
		t.Errorf("errors %d checks %d, want 4 0", rep.Errors, rep.Checks)
	}
}

func TestRunDuration(t *testing.T) {
	s := &noUpdateServer{machines: map[string]int{}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	rep, err := Run(context.Background(), Config{BaseURL: srv.URL, Client: srv.Client(), Hosts: 50, Concurrency: 4, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Elapsed < 200*time.Millisecond || rep.Elapsed > 5*time.Second {
		t.Errorf("elapsed %v for a 200ms run", rep.Elapsed)
	}
	if rep.Checks == 0 || rep.Errors != 0 {
		t.Errorf("checks %d errors %d %v", rep.Checks, rep.Errors, rep.ErrorSamples)
	}
	// Requests cut off at the deadline are not counted, so the server saw at least as many.
	s.mu.Lock()
	defer s.mu.Unlock()
	if int64(s.requests) < rep.Requests {
		t.Errorf("report counts %d requests, server saw %d", rep.Requests, s.requests)
	}
}

func TestRunCancelled(t *testing.T) {
	s := &noUpdateServer{machines: map[string]int{}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := Run(ctx, Config{BaseURL: srv.URL, Client: srv.Client(), Requests: 100})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 0 {
		t.Errorf("a cancelled run sent %d requests", rep.Requests)
	}
}

func TestConfigErrors(t *testing.T) {
	c := &http.Client{}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no url", Config{Client: c, Requests: 1}},
		{"no client", Config{BaseURL: "http://127.0.0.1:1", Requests: 1}},
		{"no bound", Config{BaseURL: "http://127.0.0.1:1", Client: c}},
		{"bad fail percent", Config{BaseURL: "http://127.0.0.1:1", Client: c, Requests: 1, FailPercent: 101}},
		{"bad version", Config{BaseURL: "http://127.0.0.1:1", Client: c, Requests: 1, Version: "latest"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Run(context.Background(), tt.cfg)
			if err == nil || rep != nil || !strings.HasPrefix(err.Error(), "loadgen: ") {
				t.Errorf("Run = %v, %v; want a loadgen error", rep, err)
			}
		})
	}
}

func TestBaselineRejectsBadInput(t *testing.T) {
	srv := httptest.NewServer(&Baseline{})
	defer srv.Close()
	tests := []struct {
		name   string
		method string
		body   string
		status int
	}{
		{"get", http.MethodGet, "", http.StatusMethodNotAllowed},
		{"garbage", http.MethodPost, "<<<", http.StatusBadRequest},
		{"doctype", http.MethodPost, `<!DOCTYPE r [<!ENTITY a "b">]><request protocol="3.0"/>`, http.StatusBadRequest},
		{"bad version", http.MethodPost, `<request protocol="3.0"><app appid="a" version="x"/></request>`, http.StatusBadRequest},
		{"too large", http.MethodPost, `<request protocol="3.0">` + strings.Repeat(" ", omaha.DefaultMaxBodyBytes+1) + `</request>`, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL, strings.NewReader(tt.body))
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
}

func TestBaselineOffersOnlyToOlderHosts(t *testing.T) {
	tests := []struct {
		name    string
		version string
		offers  bool
	}{
		{"older", "4081.2.0", true},
		{"same", "4100.0.0", false},
		{"newer", "4200.1.0", false},
		{"pre-release of the offer", "4100.0.0-rc.1", true},
	}
	srv := httptest.NewServer(&Baseline{Offer: testOffer()})
	defer srv.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := omaha.Host{Version: tt.version, Track: "stable", Board: "amd64-usr", MachineID: "m"}
			resp, err := omaha.Send(context.Background(), srv.Client(), srv.URL, omaha.NewUpdateCheckRequest(h, false), omaha.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			o, err := resp.Offer("")
			if tt.offers != (err == nil) || (tt.offers && o.Version != "4100.0.0") {
				t.Errorf("Offer = %+v, %v; want offer %v", o, err, tt.offers)
			}
		})
	}
}

func TestRunFailPercentMix(t *testing.T) {
	s := &flowServer{base: Baseline{Offer: testOffer()}, seq: map[string][]string{}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	// 100 hosts, 30 % failing; 8 requests each is enough for every good host to reboot.
	rep, err := Run(context.Background(), Config{
		BaseURL: srv.URL, Client: srv.Client(), Hosts: 100, Concurrency: 1, Requests: 800, FailPercent: 30,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 || rep.Updated != 70 {
		t.Errorf("updated %d errors %d, want 70 0 (%v)", rep.Updated, rep.Errors, rep.ErrorSamples)
	}
	failures := 0
	for _, seq := range s.seq {
		for _, step := range seq {
			if step == "3/0 errorcode=9" {
				failures++
				break
			}
		}
	}
	if failures != 30 {
		t.Errorf("%d hosts reported a failure, want 30", failures)
	}
	if !strings.Contains(rep.String(), "70 updated") {
		t.Errorf("report line %q", rep.String())
	}
}

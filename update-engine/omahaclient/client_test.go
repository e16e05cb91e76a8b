package omahaclient

import (
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
)

// server is an Omaha endpoint built from package omaha that records the requests.
type server struct {
	mu       sync.Mutex
	requests []*omaha.Request
	offer    *omaha.Offer
	status   int    // HTTP status to answer with, 0 = 200
	raw      string // raw body to answer with instead of a response
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := omaha.ParseRequest(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	offer, status, raw := s.offer, s.status, s.raw
	s.mu.Unlock()
	if status != 0 {
		http.Error(w, "down for maintenance", status)
		return
	}
	if raw != "" {
		io.WriteString(w, raw)
		return
	}
	resp := omaha.NewResponse("test", time.Now())
	app := omaha.NewAppResponse(req.Apps[0])
	if offer != nil && req.Apps[0].UpdateCheck != nil {
		if err := app.SetOffer(offer); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
	}
	resp.Apps = append(resp.Apps, app)
	b, _ := resp.Marshal()
	w.Header().Set("Content-Type", "text/xml")
	w.Write(b)
}

func newClient(t *testing.T, s *server) *Client {
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return &Client{URL: ts.URL + "/v1/update/", HTTP: ts.Client(), Host: omaha.Host{
		Version: "4000.0.0", Track: "beta", Board: "amd64-usr", Machine: "x86_64",
		MachineID: "0123456789abcdef0123456789abcdef", BootID: "{0c288430-2504-4db4-913a-8c3de52afd07}",
		AlephVersion: "3900.0.0", OEM: "qemu", OEMVersion: "1",
	}}
}

func TestCheck(t *testing.T) {
	sum := sha256.Sum256([]byte("payload"))
	s := &server{}
	c := newClient(t, s)
	offer, err := c.Check(t.Context(), false)
	if err != nil || offer != nil {
		t.Fatalf("noupdate: %v, %v", offer, err)
	}
	s.offer = &omaha.Offer{Version: "4001.0.0", URLs: []string{"https://a.example/x/", "https://b.example/x"},
		Package: omaha.Package{Name: "update.sy", Size: 1234}, SHA256: sum[:], PollInterval: 3600}
	offer, err = c.Check(t.Context(), true, omaha.EventRebooted("3999.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	if offer.Version != "4001.0.0" || offer.Package.Size != 1234 || len(offer.URLs) != 2 || offer.PollInterval != 3600 {
		t.Errorf("offer %+v", offer)
	}
	if got := offer.PayloadURLs(); got[1] != "https://b.example/x/update.sy" {
		t.Errorf("payload URLs %v", got)
	}
	if err := c.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := c.Report(t.Context(), omaha.EventError(omaha.ErrorCodePayloadHashMismatchError, "")); err != nil {
		t.Fatal(err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) != 4 {
		t.Fatalf("%d requests", len(s.requests))
	}
	// The request shape of a Flatcar update_engine.
	r := s.requests[1]
	a := r.Apps[0]
	checks := []struct{ name, got, want string }{
		{"installsource", r.InstallSource, "ondemandupdate"},
		{"version", r.Version, "update_engine-0.4.10"},
		{"os platform", r.OS.Platform, "CoreOS"},
		{"os sp", r.OS.ServicePack, "4000.0.0_x86_64"},
		{"appid", a.AppID, omaha.FlatcarAppID},
		{"track", a.Track, "beta"},
		{"board", a.Board, "amd64-usr"},
		{"machineid", a.MachineID, "0123456789abcdef0123456789abcdef"},
		{"bootid", a.BootID, "{0c288430-2504-4db4-913a-8c3de52afd07}"},
		{"alephversion", a.AlephVersion, "3900.0.0"},
		{"oem", a.OEM, "qemu"},
		{"scheduled installsource", s.requests[0].InstallSource, "scheduler"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %q, want %q", ck.name, ck.got, ck.want)
		}
	}
	if a.Ping == nil || a.UpdateCheck == nil || len(a.Events) != 1 || a.Events[0].PreviousVersion != "3999.0.0" {
		t.Errorf("check body: ping %v updatecheck %v events %v", a.Ping, a.UpdateCheck, a.Events)
	}
	if p := s.requests[2].Apps[0]; p.Ping == nil || p.UpdateCheck != nil || len(p.Events) != 0 {
		t.Errorf("ping request has updatecheck or events")
	}
	if e := s.requests[3].Apps[0]; e.UpdateCheck != nil || len(e.Events) != 1 || e.Events[0].Code() != omaha.ErrorCodePayloadHashMismatchError {
		t.Errorf("event request: %+v", e)
	}
}

func TestCheckErrors(t *testing.T) {
	tests := []struct {
		name string
		srv  *server
		code omaha.ErrorCode
	}{
		{"503", &server{status: 503}, 2503},
		{"500", &server{status: 500}, 2500},
		{"garbage", &server{raw: "<html>hello</html>"}, omaha.ErrorCodeOmahaRequestXMLParseError},
		{"entity", &server{raw: `<!DOCTYPE r [<!ENTITY x "y">]><response protocol="3.0">&x;</response>`}, omaha.ErrorCodeOmahaRequestXMLParseError},
		{"error status", &server{raw: `<response protocol="3.0"><app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" status="error-unknownApplicationOrGroup"><updatecheck status="error-internal"/></app></response>`}, omaha.ErrorCodeOmahaResponseInvalid},
		{"no postinstall", &server{raw: `<response protocol="3.0"><app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" status="ok"><updatecheck status="ok"><urls><url codebase="https://x/"/></urls><manifest version="4001.0.0"><packages><package name="p" size="1" required="true"/></packages></manifest></updatecheck></app></response>`}, omaha.ErrorCodeOmahaResponseInvalid},
		{"huge", &server{raw: "<response>" + strings.Repeat(" ", maxResponse+10) + "</response>"}, omaha.ErrorCodeOmahaRequestXMLParseError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, tt.srv)
			_, err := c.Check(t.Context(), false)
			var coded interface{ ErrorCode() omaha.ErrorCode }
			if !errors.As(err, &coded) || coded.ErrorCode() != tt.code {
				t.Fatalf("Check = %v, want code %d", err, tt.code)
			}
		})
	}
	// No server at all.
	c := &Client{URL: "http://127.0.0.1:1/v1/update/", HTTP: http.DefaultClient, Host: omaha.Host{Version: "1.0.0"}}
	var re *RequestError
	if _, err := c.Check(t.Context(), false); !errors.As(err, &re) || re.ErrorCode() != omaha.ErrorCodeOmahaRequestError {
		t.Errorf("dead server: %v", err)
	}
}

func TestReadIDs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	tests := []struct {
		name string
		read func(string) (string, error)
		in   string
		want string
	}{
		{"machine id", ReadMachineID, "0123456789abcdef0123456789abcdef\n", "0123456789abcdef0123456789abcdef"},
		{"machine id short", ReadMachineID, "0123", ""},
		{"machine id junk", ReadMachineID, "0123456789abcdef0123456789abcdeg", ""},
		{"boot id", ReadBootID, "0c288430-2504-4db4-913a-8c3de52afd07\n", "{0c288430-2504-4db4-913a-8c3de52afd07}"},
		{"boot id junk", ReadBootID, "not-a-boot-id", ""},
		// A huge file is refused without being read whole (the id after the padding would
		// parse if it were).
		{"machine id huge", ReadMachineID, strings.Repeat(" ", 8<<10) + "0123456789abcdef0123456789abcdef\n", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.read(write(string(rune('a'+i)), tt.in))
			if (err == nil) != (tt.want != "") || got != tt.want {
				t.Errorf("= %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := ReadBootID("/proc/sys/kernel/random/boot_id"); err != nil {
		t.Errorf("this host's boot id: %v", err)
	}
}

// TestDeltaOK: with DeltaOK an update check says delta_okay="true" and the offer's
// IsDeltaPayload comes through; CheckFull always says "false"; without DeltaOK a check
// says "false", as Flatcar's engine does.
func TestDeltaOK(t *testing.T) {
	s := &server{offer: &omaha.Offer{Version: "4001.0.0", URLs: []string{"https://u.example/"},
		Package: omaha.Package{Name: "delta.sy", Size: 5}, SHA256: make([]byte, 32), IsDeltaPayload: true}}
	c := newClient(t, s)
	c.DeltaOK = true
	o, err := c.Check(t.Context(), false)
	if err != nil || !o.IsDeltaPayload {
		t.Fatalf("Check: %+v, %v", o, err)
	}
	if _, err := c.CheckFull(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	c.DeltaOK = false
	if _, err := c.Check(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	var got []bool
	for _, r := range s.requests {
		got = append(got, r.Apps[0].DeltaOK)
	}
	if want := []bool{true, false, false}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("delta_okay sent %v, want %v", got, want)
	}
	if s.requests[1].InstallSource != "ondemandupdate" {
		t.Errorf("CheckFull lost onDemand: installsource %q", s.requests[1].InstallSource)
	}
}

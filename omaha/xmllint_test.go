package omaha

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// xmllint runs libxml2's xmllint, the parser Flatcar's update_engine reads responses with,
// as an independent judge of what Marshal writes. It skips loudly when xmllint is missing.
func xmllint(t *testing.T, doc []byte, xpath string) string {
	t.Helper()
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		t.Skip("SKIPPING: xmllint (libxml2) is not installed; install it with: apt-get install libxml2-utils")
	}
	f := filepath.Join(t.TempDir(), "doc.xml")
	if err := os.WriteFile(f, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--nonet", "--noout", f}
	if xpath != "" {
		args = []string{"--nonet", "--xpath", xpath, f}
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("xmllint %s: %v\n%s\n%s", xpath, err, out, doc)
	}
	return strings.TrimSpace(string(out))
}

// TestMarshalReadByLibxml2 checks that a response built by this package reads, through
// libxml2 and the XPaths Flatcar's update_engine uses (omaha_request_action.cc ParseResponse),
// as the values that went in.
func TestMarshalReadByLibxml2(t *testing.T) {
	offer := &Offer{
		Version:               "4100.0.0",
		URLs:                  []string{"https://updates.example.com/a/", "https://mirror.example.com/b?x=1&y=<2>"},
		Package:               Package{Name: "flatcar_production_update.gz", Size: 465881871, HashSHA256: strings.Repeat("0f", 32)},
		Extra:                 []Package{{Name: "oem-qemu.gz", Size: 10}},
		SHA256:                []byte("0123456789abcdef0123456789abcdef"),
		DisablePayloadBackoff: true,
		MaxFailureCountPerURL: 3,
		PollInterval:          3600,
	}
	app := NewAppResponse(&App{AppID: FlatcarAppID, Ping: &Ping{Active: 1}, UpdateCheck: &UpdateCheck{}, Events: []*Event{EventRebooted("")}})
	if err := app.SetOffer(offer); err != nil {
		t.Fatal(err)
	}
	resp := NewResponse("switchyard", time.Date(2026, 11, 25, 0, 0, 7, 0, time.UTC))
	resp.Apps = append(resp.Apps, app)
	doc, err := resp.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		xpath string
		want  string
	}{
		{"string(/response/@protocol)", "3.0"},
		{"string(/response/daystart/@elapsed_seconds)", "7"},
		{"string(/response/app/@status)", "ok"},
		{"string(/response/app/ping/@status)", "ok"},
		{"string(/response/app/updatecheck/@status)", "ok"},
		{"string(/response/app/updatecheck/@PollInterval)", "3600"},
		{"string(/response/app/updatecheck/manifest/@version)", "4100.0.0"},
		{"count(/response/app/updatecheck/urls/url)", "2"},
		{"string(/response/app/updatecheck/urls/url[1]/@codebase)", "https://updates.example.com/a/"},
		{"string(/response/app/updatecheck/urls/url[2]/@codebase)", "https://mirror.example.com/b?x=1&y=<2>"},
		{"string(/response/app/updatecheck/manifest/packages/package[1]/@name)", "flatcar_production_update.gz"},
		{"string(/response/app/updatecheck/manifest/packages/package[1]/@size)", "465881871"},
		{"string(/response/app/updatecheck/manifest/packages/package[1]/@required)", "true"},
		{"string(/response/app/updatecheck/manifest/packages/package[1]/@hash_sha256)", strings.Repeat("0f", 32)},
		{"string(/response/app/updatecheck/manifest/packages/package[2]/@name)", "oem-qemu.gz"},
		{"string(/response/app/updatecheck/manifest/actions/action[@event='postinstall']/@sha256)", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
		{"string(/response/app/updatecheck/manifest/actions/action[@event='postinstall']/@DisablePayloadBackoff)", "true"},
		{"string(/response/app/updatecheck/manifest/actions/action[@event='postinstall']/@MaxFailureCountPerUrl)", "3"},
		{"count(/response/app/event[@status='ok'])", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.xpath, func(t *testing.T) {
			if got := xmllint(t, doc, tt.xpath); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.xpath, got, tt.want)
			}
		})
	}
}

// TestRequestsReadByLibxml2 checks every request builder's output with libxml2: well-formed,
// and the attributes a server reads come back as written.
func TestRequestsReadByLibxml2(t *testing.T) {
	h := flatcarHost
	h.MachineAlias = `rack "7" <east> & co`
	tests := []struct {
		name  string
		req   *Request
		xpath string
		want  string
	}{
		{"check", NewUpdateCheckRequest(h, true, EventRebooted("3510.2.8")), "string(/request/app/event/@previousversion)", "3510.2.8"},
		{"check source", NewUpdateCheckRequest(h, true), "string(/request/@installsource)", "ondemandupdate"},
		{"alias escaped", NewPingRequest(h), "string(/request/app/@machinealias)", `rack "7" <east> & co`},
		{"board", NewPingRequest(h), "string(/request/app/@board)", "amd64-usr"},
		{"os sp", NewPingRequest(h), "string(/request/os/@sp)", "3602.2.3_x86_64"},
		{"error code", NewEventRequest(h, EventError(ErrorCodeOmahaResponseInvalid|ErrorFlagTestOmahaURL, "x")), "string(/request/app/event/@errorcode)", "268435490"},
		{"rollback", NewUpdateCheckRequest(h, false, EventRollback(0)), "string(/request/app/event/@errorcode)", "44"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := tt.req.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			xmllint(t, doc, "")
			if got := xmllint(t, doc, tt.xpath); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.xpath, got, tt.want)
			}
		})
	}
}

// TestGoldenFilesWellFormedForLibxml2 holds the hand-written golden files to libxml2 too.
func TestGoldenFilesWellFormedForLibxml2(t *testing.T) {
	files, _ := filepath.Glob("testdata/*/*.xml")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			xmllint(t, b, "")
		})
	}
}

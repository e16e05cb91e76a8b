package engine

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/update-engine/omahaclient"
)

// omahaServer is a real Omaha endpoint (package omaha over httptest) that answers update
// checks with answer and records every event it receives as "type/result code=N".
type omahaServer struct {
	answer func(w http.ResponseWriter, req *omaha.Request)

	mu     sync.Mutex
	events []string
}

func (s *omahaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := omaha.ParseRequest(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	for _, e := range req.Apps[0].Events {
		v := fmt.Sprintf("%d/%d", e.Type, e.Result)
		if e.ErrorCode != nil {
			v += fmt.Sprintf(" code=%d", uint32(*e.ErrorCode))
		}
		s.events = append(s.events, v)
	}
	s.mu.Unlock()
	if req.Apps[0].UpdateCheck != nil {
		s.answer(w, req)
		return
	}
	writeResponse(w, req, nil)
}

func (s *omahaServer) recorded() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.events...)
}

// writeResponse answers req with app (nil: acks and noupdate).
func writeResponse(w http.ResponseWriter, req *omaha.Request, app *omaha.AppResponse) {
	if app == nil {
		app = omaha.NewAppResponse(req.Apps[0])
	}
	resp := omaha.NewResponse("test", time.Now())
	resp.Apps = append(resp.Apps, app)
	b, err := resp.Marshal()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Write(b)
}

// TestRefusedAnswerIsReported: an update check answered with something the host refuses is
// reported to the server as 3/0 with the code, like every failure after the check; no answer
// at all and an HTTP error status are not.
func TestRefusedAnswerIsReported(t *testing.T) {
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter, req *omaha.Request)
		code   omaha.ErrorCode
		events []string
	}{
		{"error status", func(w http.ResponseWriter, req *omaha.Request) {
			writeResponse(w, req, omaha.NewAppErrorResponse(req.Apps[0].AppID, omaha.AppStatusInternal))
		}, omaha.ErrorCodeOmahaResponseInvalid, []string{"3/0 code=34"}},
		{"offer without postinstall action", func(w http.ResponseWriter, req *omaha.Request) {
			app := omaha.NewAppResponse(req.Apps[0])
			if err := app.SetOffer(testOffer()); err != nil {
				t.Error(err)
			}
			app.UpdateCheck.Manifests[0].Actions = nil
			writeResponse(w, req, app)
		}, omaha.ErrorCodeOmahaResponseInvalid, []string{"3/0 code=34"}},
		{"empty body", func(http.ResponseWriter, *omaha.Request) {},
			omaha.ErrorCodeOmahaRequestEmptyResponseError, []string{"3/0 code=30"}},
		{"not XML", func(w http.ResponseWriter, _ *omaha.Request) { w.Write([]byte("<html>captive portal")) },
			omaha.ErrorCodeOmahaRequestXMLParseError, []string{"3/0 code=31"}},
		{"HTTP error", func(w http.ResponseWriter, _ *omaha.Request) {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
		},
			omaha.ErrorCodeHTTPResponseBase + 503, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &omahaServer{answer: tt.answer}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			r := newRig(t)
			r.opts.Server = &omahaclient.Client{URL: ts.URL + "/v1/update/", HTTP: ts.Client(), Host: omaha.Host{
				Version: "4000.0.0", Track: "stable", Board: "amd64-usr", Machine: "x86_64",
				MachineID: "0123456789abcdef0123456789abcdef", BootID: "{0c288430-2504-4db4-913a-8c3de52afd07}",
			}}
			snap, err := r.engine(t).Once(t.Context())
			if got := CodeOf(err); got != tt.code {
				t.Fatalf("Once = %v (code %d), want code %d", err, got, tt.code)
			}
			if snap.Status != StatusIdle || snap.LastErrorCode != uint32(tt.code) {
				t.Errorf("snapshot %s, code %d", snap.Status, snap.LastErrorCode)
			}
			if got := srv.recorded(); strings.Join(got, ",") != strings.Join(tt.events, ",") {
				t.Errorf("the server received events %q, want %q", got, tt.events)
			}
			if len(r.inst.started) != 0 {
				t.Error("the installer ran")
			}
		})
	}
}

// TestHashSHA256Forms: package@hash_sha256 is read in both forms peers send, hex (Nebraska,
// omaha-server) and base64 (go-omaha's server), through a real Omaha endpoint; either must be
// TUF's SHA-256, and a value in neither form is an invalid answer.
func TestHashSHA256Forms(t *testing.T) {
	other := sha256.Sum256([]byte("other"))
	tests := []struct {
		name string
		hash string
		code omaha.ErrorCode // 0: the update is applied
	}{
		{"hex", hex.EncodeToString(payloadSum[:]), 0},
		{"base64, as go-omaha sends it", base64.StdEncoding.EncodeToString(payloadSum[:]), 0},
		{"base64 of another payload", base64.StdEncoding.EncodeToString(other[:]), omaha.ErrorCodePayloadHashMismatchError},
		{"hex of another payload", hex.EncodeToString(other[:]), omaha.ErrorCodePayloadHashMismatchError},
		{"neither form", "sha256:" + hex.EncodeToString(payloadSum[:]), omaha.ErrorCodeOmahaResponseInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &omahaServer{answer: func(w http.ResponseWriter, req *omaha.Request) {
				app := omaha.NewAppResponse(req.Apps[0])
				if err := app.SetOffer(testOffer()); err != nil {
					t.Error(err)
				}
				// Written after SetOffer, which validates: this is what another server sends.
				app.UpdateCheck.Manifests[0].Packages[0].HashSHA256 = tt.hash
				writeResponse(w, req, app)
			}}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			r := newRig(t)
			r.opts.Server = &omahaclient.Client{URL: ts.URL + "/v1/update/", HTTP: ts.Client(), Host: omaha.Host{
				Version: "4000.0.0", Track: "stable", Board: "amd64-usr", Machine: "x86_64",
				MachineID: "0123456789abcdef0123456789abcdef", BootID: "{0c288430-2504-4db4-913a-8c3de52afd07}",
			}}
			snap, err := r.engine(t).Once(t.Context())
			if tt.code == 0 {
				if err != nil || snap.Status != StatusUpdatedNeedReboot {
					t.Fatalf("Once = %s, %v; want the update applied", snap.Status, err)
				}
				return
			}
			if got := CodeOf(err); got != tt.code {
				t.Fatalf("Once = %v (code %d), want code %d", err, got, tt.code)
			}
			ev := srv.recorded()
			if want := fmt.Sprintf("3/0 code=%d", tt.code); len(ev) == 0 || ev[len(ev)-1] != want {
				t.Errorf("events %q, want the last to be %s", ev, want)
			}
		})
	}
}

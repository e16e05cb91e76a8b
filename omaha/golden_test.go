package omaha

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// flatcarHost is the host of the golden requests (testdata/requests, see testdata/README.md).
var flatcarHost = Host{
	Version:      "3602.2.3",
	Track:        "stable",
	Board:        "amd64-usr",
	Machine:      "x86_64",
	MachineID:    "dbff85b41ae14f41bde761eefbdafaac",
	BootID:       "{0c288430-2504-4db4-913a-8c3de52afd07}",
	OEM:          "vmware",
	OEMVersion:   "11.2.5",
	AlephVersion: "2905.2.3",
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseGoldenRequest(t *testing.T, name string) *Request {
	t.Helper()
	req, err := ParseRequest(bytesReader(readGolden(t, name)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return req
}

func parseGoldenResponse(t *testing.T, name string) *Response {
	t.Helper()
	resp, err := ParseResponse(bytesReader(readGolden(t, name)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return resp
}

func code(c ErrorCode) *ErrorCode { return &c }

func TestGoldenRequests(t *testing.T) {
	tests := []struct {
		file          string
		installSource string
		ping, check   bool
		events        []Event
		// build is what our builders make for the same situation; nil when none applies.
		build *Request
	}{
		{
			file: "scheduled-check.xml", installSource: InstallSourceScheduler, ping: true, check: true,
			events: []Event{{Type: EventTypeUpdateComplete, Result: EventResultSuccessReboot}},
			build:  NewUpdateCheckRequest(flatcarHost, false, EventRebooted("")),
		},
		{
			file: "ondemand-check.xml", installSource: InstallSourceOnDemand, ping: true, check: true,
			events: []Event{{Type: EventTypeUpdateComplete, Result: EventResultSuccessReboot}},
			build:  NewUpdateCheckRequest(flatcarHost, true, EventRebooted("")),
		},
		{
			file: "ping-only.xml", installSource: InstallSourceScheduler, ping: true,
			build: NewPingRequest(flatcarHost),
		},
		{
			file: "event-13-1.xml", installSource: InstallSourceScheduler,
			events: []Event{{Type: EventTypeUpdateDownloadStarted, Result: EventResultSuccess}},
			build:  NewEventRequest(flatcarHost, EventDownloadStarted()),
		},
		{
			file: "event-14-1.xml", installSource: InstallSourceScheduler,
			events: []Event{{Type: EventTypeUpdateDownloadFinished, Result: EventResultSuccess}},
			build:  NewEventRequest(flatcarHost, EventDownloadFinished()),
		},
		{
			file: "event-3-1.xml", installSource: InstallSourceScheduler,
			events: []Event{{Type: EventTypeUpdateComplete, Result: EventResultSuccess}},
			build:  NewEventRequest(flatcarHost, EventInstalled()),
		},
		{
			file: "event-3-2.xml", installSource: InstallSourceScheduler, ping: true, check: true,
			events: []Event{{Type: EventTypeUpdateComplete, Result: EventResultSuccessReboot, PreviousVersion: "3510.2.8"}},
			build:  NewUpdateCheckRequest(flatcarHost, false, EventRebooted("3510.2.8")),
		},
		{
			file: "event-3-0-errorcode.xml", installSource: InstallSourceScheduler,
			events: []Event{{Type: EventTypeUpdateComplete, Result: EventResultError, ErrorCode: code(ErrorCodeOmahaResponseInvalid | ErrorFlagTestOmahaURL)}},
			build:  NewEventRequest(flatcarHost, EventError(ErrorCodeOmahaResponseInvalid|ErrorFlagTestOmahaURL, "")),
		},
		{
			file: "event-3-0-devmode-signed.xml", installSource: InstallSourceScheduler,
			events: []Event{{Type: EventTypeUpdateComplete, Result: EventResultError, ErrorCode: code(ErrorCodePostinstallRunnerError | ErrorFlagDevMode)}},
			build:  NewEventRequest(flatcarHost, EventError(ErrorCodePostinstallRunnerError|ErrorFlagDevMode, "")),
		},
		{
			file: "event-800-1.xml", installSource: InstallSourceScheduler,
			events: []Event{{Type: EventTypeUpdateInstalled, Result: EventResultSuccess}},
			build:  NewEventRequest(flatcarHost, EventUpdateInstalled()),
		},
		{
			file: "rollback-check.xml", installSource: InstallSourceScheduler, ping: true, check: true,
			events: []Event{{Type: EventTypeUpdateComplete, Result: EventResultError, ErrorCode: code(ErrorCodeRollback)}},
			build:  NewUpdateCheckRequest(flatcarHost, false, EventRollback(0)),
		},
		{
			file: "event-3-9-deferred.xml", installSource: InstallSourceScheduler,
			events: []Event{{Type: EventTypeUpdateComplete, Result: EventResultUpdateDeferred, ErrorCode: code(ErrorCodeOmahaUpdateDeferredForBackoff)}},
			build:  NewEventRequest(flatcarHost, EventDeferred(ErrorCodeOmahaUpdateDeferredForBackoff)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			req := parseGoldenRequest(t, filepath.Join("requests", tt.file))
			if err := req.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if req.InstallSource != tt.installSource || req.IsMachine != 1 || req.Version != FlatcarUpdaterVersion {
				t.Errorf("request attributes = %q %d %q", req.InstallSource, req.IsMachine, req.Version)
			}
			if req.OS == nil || req.OS.Platform != "CoreOS" || req.OS.ServicePack != "3602.2.3_x86_64" {
				t.Errorf("os = %+v", req.OS)
			}
			if len(req.Apps) != 1 {
				t.Fatalf("apps = %d, want 1", len(req.Apps))
			}
			app := req.Apps[0]
			if app.AppID != FlatcarAppID || app.Board != "amd64-usr" || app.Track != "stable" || app.MachineID != flatcarHost.MachineID {
				t.Errorf("app = %+v", app)
			}
			if (app.Ping != nil) != tt.ping || (app.UpdateCheck != nil) != tt.check {
				t.Errorf("ping %v updatecheck %v, want %v %v", app.Ping != nil, app.UpdateCheck != nil, tt.ping, tt.check)
			}
			var got []Event
			for _, e := range app.Events {
				got = append(got, *e)
			}
			if !reflect.DeepEqual(got, tt.events) {
				t.Errorf("events = %+v, want %+v", got, tt.events)
			}
			if tt.build != nil {
				b, err := tt.build.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				rebuilt, err := ParseRequest(bytesReader(b))
				if err != nil {
					t.Fatalf("parsing built request: %v\n%s", err, b)
				}
				if !reflect.DeepEqual(rebuilt, req) {
					t.Errorf("built request differs from golden:\nbuilt  %s\ngolden %s", b, readGolden(t, filepath.Join("requests", tt.file)))
				}
			}
		})
	}
}

func TestGoldenResponses(t *testing.T) {
	checkReq := parseGoldenRequest(t, "requests/scheduled-check.xml").Apps[0]
	eventReq := parseGoldenRequest(t, "requests/event-13-1.xml").Apps[0]
	pingReq := parseGoldenRequest(t, "requests/ping-only.xml").Apps[0]
	midnight := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

	tests := []struct {
		file    string
		wantErr error       // from Offer; nil means an offer
		want    *Offer      // checked field by field when wantErr is nil
		status  StatusError // when wantErr is a *StatusError
		build   func(t *testing.T, want *Offer) *Response
	}{
		{
			file: "nebraska-noupdate.xml", wantErr: ErrNoUpdate,
			build: func(t *testing.T, _ *Offer) *Response {
				r := NewResponse("nebraska", midnight)
				r.Apps = append(r.Apps, NewAppResponse(checkReq))
				return r
			},
		},
		{
			file: "nebraska-update.xml",
			want: &Offer{
				Version: "2191.5.0",
				URLs:    []string{"https://update.release.flatcar-linux.net/amd64-usr/2191.5.0/"},
				Package: Package{Name: "flatcar_production_update.gz", Hash: "r3nufcxgMTZaxYEqL+x2zIoeClk=", Size: 465881871, Required: true},
				SHA256:  mustB64(t, "LIkAKVZY2EJFiwTmltiJZLFLA5xT/FodbjVgqkyF/y8="),

				DisablePayloadBackoff: true,
			},
			build: func(t *testing.T, want *Offer) *Response {
				r := NewResponse("nebraska", midnight)
				a := NewAppResponse(&App{AppID: FlatcarAppID, Ping: &Ping{}, UpdateCheck: &UpdateCheck{}})
				if err := a.SetOffer(want); err != nil {
					t.Fatal(err)
				}
				r.Apps = append(r.Apps, a)
				return r
			},
		},
		{
			file: "flatcar-update-minimal.xml",
			want: &Offer{
				Version: "3815.2.0",
				URLs:    []string{"http://localhost:9091/"},
				Package: Package{Name: "flatcar_production_update.gz", Hash: "2jmj7l5rSw0yVb/vlWAYkK/YBwk=", Size: 123456789, Required: true},
				SHA256:  mustB64(t, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),

				DisablePayloadBackoff: true,
			},
			build: func(t *testing.T, want *Offer) *Response {
				r := NewResponse("flatcar-update", midnight)
				a := NewAppResponse(checkReq)
				if err := a.SetOffer(want); err != nil {
					t.Fatal(err)
				}
				r.Apps = append(r.Apps, a)
				return r
			},
		},
		{
			file: "nebraska-extra-packages.xml",
			want: &Offer{
				Version: "3732.0.0",
				URLs:    []string{"https://update.release.flatcar-linux.net/amd64-usr/3732.0.0/"},
				Package: Package{Name: "flatcar_production_update.gz", Hash: "gMEdgSFmwEqZDuh6ZVmG9vO0zmM=", Size: 382137917, Required: true},
				Extra: []Package{
					{Name: "oem-azure.gz", Hash: "3nBGbIYgFLQybcNILlKkzI6eD8Y=", HashSHA256: "0d8d3b5ae9e6b29d2e2e0c8f1fae0c4b1a0b2f2c7e51b3b1c2a39d6c1a2b3c4d", Size: 40897503},
					{Name: "oem-qemu.gz", Hash: "Yk1UOB1o8uWlwcYMPPZRAzHRrno=", HashSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Size: 2097152},
				},
				SHA256:                mustB64(t, "iRyBQw9blnO1GAeRWSI8DAntyJNZjZAaA0v9P/lTC3I="),
				DisablePayloadBackoff: true,
			},
		},
		{
			file: "nebraska-unknown-app.xml", wantErr: &StatusError{},
			status: StatusError{AppID: "{11111111-2222-3333-4444-555555555555}", AppStatus: AppStatusUnknownApplication, UpdateStatus: UpdateStatusInternal},
			build: func(t *testing.T, _ *Offer) *Response {
				r := NewResponse("nebraska", midnight)
				r.Apps = append(r.Apps, NewAppErrorResponse("{11111111-2222-3333-4444-555555555555}", AppStatusUnknownApplication))
				return r
			},
		},
		{
			file: "nebraska-rate-limited.xml", wantErr: &StatusError{},
			status: StatusError{AppID: FlatcarAppID, AppStatus: AppStatusMaxUpdatesPerPeriodLimitReached, UpdateStatus: UpdateStatusInternal},
		},
		{
			file: "nebraska-event-ack.xml", wantErr: &ValidationError{},
			build: func(t *testing.T, _ *Offer) *Response {
				r := NewResponse("nebraska", midnight)
				r.Apps = append(r.Apps, NewAppResponse(eventReq))
				return r
			},
		},
		{
			file: "nebraska-ping-ack.xml", wantErr: &ValidationError{},
			build: func(t *testing.T, _ *Offer) *Response {
				r := NewResponse("nebraska", midnight)
				r.Apps = append(r.Apps, NewAppResponse(pingReq))
				return r
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			resp := parseGoldenResponse(t, filepath.Join("responses", tt.file))
			offer, err := resp.Offer(FlatcarAppID)
			if a := resp.App(""); a != nil && offer == nil && err == nil {
				t.Fatal("Offer returned neither an offer nor an error")
			}
			if tt.status.AppID != "" {
				offer, err = resp.Offer("")
			}
			switch want := tt.wantErr.(type) {
			case nil:
				if err != nil {
					t.Fatalf("Offer: %v", err)
				}
				if !reflect.DeepEqual(offer, tt.want) {
					t.Errorf("offer = %+v\nwant    %+v", offer, tt.want)
				}
			case *StatusError:
				var se *StatusError
				if !errors.As(err, &se) || *se != tt.status {
					t.Fatalf("Offer error = %v, want %+v", err, tt.status)
				}
				if se.ErrorCode() != ErrorCodeOmahaResponseInvalid {
					t.Errorf("ErrorCode = %v", se.ErrorCode())
				}
			case *ValidationError:
				var ve *ValidationError
				if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("Offer error = %v, want a ValidationError", err)
				}
			default:
				if !errors.Is(err, want) {
					t.Fatalf("Offer error = %v, want %v", err, want)
				}
			}
			if tt.build != nil {
				b, err := tt.build(t, tt.want).Marshal()
				if err != nil {
					t.Fatal(err)
				}
				rebuilt, err := ParseResponse(bytesReader(b))
				if err != nil {
					t.Fatalf("parsing built response: %v\n%s", err, b)
				}
				if !reflect.DeepEqual(rebuilt, resp) {
					t.Errorf("built response differs from golden:\nbuilt  %s\ngolden %s", b, readGolden(t, filepath.Join("responses", tt.file)))
				}
			}
		})
	}
}

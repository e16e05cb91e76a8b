package omaha

import (
	"encoding/xml"
	"errors"
	"testing"
)

func TestErrorCodeString(t *testing.T) {
	tests := []struct {
		code ErrorCode
		want string
		base ErrorCode
	}{
		{0, "Success", 0},
		{34, "OmahaResponseInvalid", 34},
		{268435490, "OmahaResponseInvalid|TestOmahaUrlFlag", 34},
		{ErrorCodeRollback, "RollbackError", 44},
		{ErrorCodePostinstallRunnerError | ErrorFlagDevMode | ErrorFlagResumed | ErrorFlagTestImage | ErrorFlagTestOmahaURL,
			"PostinstallRunnerError|DevModeFlag|ResumedFlag|TestImageFlag|TestOmahaUrlFlag", 5},
		{2404, "OmahaRequestHTTPResponse(404)", 2404},
		{ErrorCodeHTTPResponseBase + 999 | ErrorFlagTestImage, "OmahaRequestHTTPResponse(999)|TestImageFlag", 2999},
		{77, "ErrorCode(77)", 77},
		{ErrorCodeDownloadIncomplete, "DownloadIncomplete", 100},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.code.String(); got != tt.want {
				t.Errorf("String = %q, want %q", got, tt.want)
			}
			if tt.code.Base() != tt.base {
				t.Errorf("Base = %d, want %d", tt.code.Base(), tt.base)
			}
			if tt.code.Base()|tt.code.Flags() != tt.code {
				t.Errorf("Base|Flags != code")
			}
		})
	}
	if st, ok := ErrorCode(2503).HTTPStatus(); !ok || st != 503 {
		t.Errorf("HTTPStatus(2503) = %d %v", st, ok)
	}
	if _, ok := ErrorCodeRollback.HTTPStatus(); ok {
		t.Errorf("HTTPStatus(44) reported an HTTP status")
	}
}

func TestParseErrorCode(t *testing.T) {
	tests := []struct {
		in   string
		want ErrorCode
		ok   bool
	}{
		{"0", 0, true},
		{"44", 44, true},
		{"268435490", 268435490, true},
		{"-2147483643", ErrorFlagDevMode | 5, true},
		{"4294967295", 0xffffffff, true},
		{" 12 ", 12, true},
		{"4294967296", 0, false},
		{"-2147483649", 0, false},
		{"", 0, false},
		{"0x10", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseErrorCode(tt.in)
			if tt.ok != (err == nil) || got != tt.want {
				t.Fatalf("ParseErrorCode(%q) = %d, %v", tt.in, got, err)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if err == nil {
				a, _ := got.MarshalXMLAttr(xml.Name{Local: "errorcode"})
				var back ErrorCode
				if err := back.UnmarshalXMLAttr(a); err != nil || back != got {
					t.Errorf("attr round trip: %q -> %d, %v", a.Value, back, err)
				}
			}
		})
	}
}

func TestEventNames(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{EventTypeUpdateComplete.String(), "UpdateComplete"},
		{EventTypeUpdateDownloadStarted.String(), "UpdateDownloadStarted"},
		{EventTypeUpdateDownloadFinished.String(), "UpdateDownloadFinished"},
		{EventTypeUpdateInstalled.String(), "UpdateInstalled"},
		{EventType(4242).String(), "EventType(4242)"},
		{EventResultSuccessReboot.String(), "SuccessReboot"},
		{EventResultUpdateDeferred.String(), "UpdateDeferred"},
		{EventResult(-1).String(), "EventResult(-1)"},
		{AppStatusUnknownApplication.String(), "error-unknownApplication"},
		{UpdateStatusNoUpdate.String(), "noupdate"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	if AppStatusOK.IsError() || !AppStatusInternal.IsError() || !AppStatus("error-new").IsError() {
		t.Errorf("AppStatus.IsError wrong")
	}
	if (&Event{}).Code() != ErrorCodeSuccess || EventRollback(ErrorFlagTestImage|3).Code() != ErrorCodeRollback|ErrorFlagTestImage {
		t.Errorf("Event.Code wrong")
	}
}

func TestStatusError(t *testing.T) {
	err := error(&StatusError{AppID: "x", AppStatus: AppStatusUnknownApplication, UpdateStatus: UpdateStatusInternal})
	if got := err.Error(); got != "omaha: app x: status error-unknownApplication, updatecheck status error-internal" {
		t.Errorf("Error = %q", got)
	}
	var se *StatusError
	if !errors.As(err, &se) || se.ErrorCode() != ErrorCodeOmahaResponseInvalid {
		t.Errorf("StatusError.ErrorCode wrong")
	}
}

// TestMachineOf: the os@sp a request carries names the machine of the host's board, as
// Flatcar's update_engine sends it (4081.2.0_x86_64).
func TestMachineOf(t *testing.T) {
	for board, want := range map[string]string{"amd64-usr": "x86_64", "arm64-usr": "aarch64", "riscv-usr": ""} {
		if got := MachineOf(board); got != want {
			t.Errorf("MachineOf(%q) = %q, want %q", board, got, want)
		}
	}
	r := NewPingRequest(Host{Version: "4081.2.0", Board: "amd64-usr"})
	if sp := r.OS.ServicePack; sp != "4081.2.0_x86_64" {
		t.Errorf("os@sp = %q, want 4081.2.0_x86_64", sp)
	}
	r = NewPingRequest(Host{Version: "4081.2.0", Board: "amd64-usr", Machine: "aarch64"})
	if sp := r.OS.ServicePack; sp != "4081.2.0_aarch64" {
		t.Errorf("os@sp with Machine set = %q, want 4081.2.0_aarch64", sp)
	}
}

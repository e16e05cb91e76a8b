package omahahandler

import (
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

func code(c omaha.ErrorCode) *omaha.ErrorCode { return &c }

func TestApply(t *testing.T) {
	now := time.Unix(1_700_000_000, 0).UTC()
	granted := &store.Instance{AppID: "a", MachineID: "m", Version: "1.0.0", Status: store.StatusUpdateGranted, UpdateVersion: "2.0.0", Alias: "web1"}
	installed := &store.Instance{AppID: "a", MachineID: "m", Version: "1.0.0", Status: store.StatusInstalled, UpdateVersion: "2.0.0"}
	tests := []struct {
		name       string
		cur        *store.Instance
		version    string
		events     []*omaha.Event
		offered    string
		wantStatus store.Status
		wantCode   int64
		wantHist   int
		wantEvents int
		wantVer    string
	}{
		{name: "new host, no offer", version: "1.0.0", wantStatus: store.StatusUndefined},
		{name: "new host, offer", version: "1.0.0", offered: "2.0.0", wantStatus: store.StatusUpdateGranted, wantHist: 1, wantVer: "2.0.0"},
		{name: "same offer again writes no history", cur: granted, version: "1.0.0", offered: "2.0.0", wantStatus: store.StatusUpdateGranted, wantVer: "2.0.0"},
		{name: "newer offer", cur: granted, version: "1.0.0", offered: "3.0.0", wantStatus: store.StatusUpdateGranted, wantHist: 1, wantVer: "3.0.0"},
		{name: "download started", cur: granted, version: "1.0.0", events: []*omaha.Event{omaha.EventDownloadStarted()}, wantStatus: store.StatusDownloading, wantHist: 1, wantEvents: 1, wantVer: "2.0.0"},
		{name: "all progress in one request", cur: granted, version: "1.0.0",
			events:     []*omaha.Event{omaha.EventDownloadStarted(), omaha.EventDownloadFinished(), omaha.EventInstalled()},
			wantStatus: store.StatusInstalled, wantHist: 3, wantEvents: 3, wantVer: "2.0.0"},
		{name: "routine 3/2 is dropped", cur: granted, version: "1.0.0", events: []*omaha.Event{omaha.EventRebooted("")}, wantStatus: store.StatusUpdateGranted, wantVer: "2.0.0"},
		{name: "3/2 with 0.0.0.0 is dropped", cur: granted, version: "1.0.0", events: []*omaha.Event{omaha.EventRebooted("0.0.0.0")}, wantStatus: store.StatusUpdateGranted, wantVer: "2.0.0"},
		{name: "3/2 after reboot completes", cur: installed, version: "2.0.0", events: []*omaha.Event{omaha.EventRebooted("1.0.0")}, wantStatus: store.StatusComplete, wantHist: 1, wantEvents: 1, wantVer: "2.0.0"},
		{name: "lost 3/2: running the granted version completes", cur: installed, version: "2.0.0", wantStatus: store.StatusComplete, wantHist: 1, wantVer: "2.0.0"},
		{name: "rollback", cur: installed, version: "1.0.0", events: []*omaha.Event{omaha.EventRollback(0)}, wantStatus: store.StatusRolledBack, wantCode: 44, wantHist: 1, wantEvents: 1, wantVer: "2.0.0"},
		{name: "error keeps flags", cur: granted, version: "1.0.0", events: []*omaha.Event{omaha.EventError(omaha.ErrorCodeDownloadTransferError|omaha.ErrorFlagResumed, "")},
			wantStatus: store.StatusError, wantCode: 1<<30 | 9, wantHist: 1, wantEvents: 1, wantVer: "2.0.0"},
		{name: "same error twice is two history entries", cur: &store.Instance{Status: store.StatusError, Version: "1.0.0", LastErrorCode: 9}, version: "1.0.0",
			events: []*omaha.Event{{Type: 3, Result: 0, ErrorCode: code(9)}}, wantStatus: store.StatusError, wantCode: 9, wantHist: 1, wantEvents: 1},
		{name: "unknown event stored only", cur: granted, version: "1.0.0", events: []*omaha.Event{{Type: 999, Result: 3}}, wantStatus: store.StatusUpdateGranted, wantEvents: 1, wantVer: "2.0.0"},
		{name: "deferred stored only", cur: granted, version: "1.0.0", events: []*omaha.Event{omaha.EventDeferred(omaha.ErrorCodeOmahaUpdateDeferredForBackoff)}, wantStatus: store.StatusUpdateGranted, wantEvents: 1, wantVer: "2.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := &omaha.App{AppID: "a", MachineID: "m", Version: tt.version, Track: "stable", Events: tt.events}
			before := ""
			if tt.cur != nil {
				before = tt.cur.Alias
			}
			u := apply(tt.cur, checkin{app: app, appID: "a", group: "g", ip: "10.0.0.1", board: "amd64-usr", offered: tt.offered, now: now})
			in := u.Instance
			if in.Status != tt.wantStatus || in.LastErrorCode != tt.wantCode || len(u.History) != tt.wantHist || len(u.Events) != tt.wantEvents {
				t.Errorf("status %s code %d, %d history, %d events; want %s %d, %d, %d", in.Status, in.LastErrorCode, len(u.History), len(u.Events),
					tt.wantStatus, tt.wantCode, tt.wantHist, tt.wantEvents)
			}
			if tt.wantVer != "" && in.UpdateVersion != tt.wantVer {
				t.Errorf("update version %q, want %q", in.UpdateVersion, tt.wantVer)
			}
			if in.Version != tt.version || !in.LastCheck.Equal(now) || in.Group != "g" || in.IP != "10.0.0.1" || in.Alias != before {
				t.Errorf("instance fields: %+v", in)
			}
			if tt.cur == nil && !in.FirstCheck.Equal(now) {
				t.Errorf("first check %v", in.FirstCheck)
			}
			if tt.cur != nil && tt.cur.Status != tt.wantStatus && !in.StatusAt.Equal(now) {
				t.Errorf("status time not moved")
			}
		})
	}
}

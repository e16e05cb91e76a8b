package omahahandler_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/catalog"
	"github.com/switchyard-os/switchyard/omaha-server/omahahandler"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

// failingApp is the real store, except that check-ins of one application fail, as a
// database error in the middle of a request would.
type failingApp struct {
	*sqlite.Store
	app string
}

func (f failingApp) Checkin(ctx context.Context, appID, machineID string, decide func(*store.Instance) (*store.InstanceUpdate, error)) error {
	if store.NormalizeAppID(appID) == f.app {
		return errors.New("disk I/O error")
	}
	return f.Store.Checkin(ctx, appID, machineID, decide)
}

// TestFailureAfterRecordedApp: when one app of a request cannot be recorded after an earlier
// app was, the request still answers 200 with an app-level error for the failed one, so the
// client does not resend (and duplicate) what the server already holds; when the first app
// fails, nothing is recorded and the whole request fails.
func TestFailureAfterRecordedApp(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, id := range []string{store.FlatcarAppID, "second"} {
		if _, err := st.CreateApp(ctx, store.App{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateGroup(ctx, store.Group{AppID: id, Name: "stable", Track: "stable", UpdatesEnabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	h := omahahandler.New(omahahandler.Config{Catalog: catalog.New(st, 0, nil), Store: failingApp{st, "second"}})
	post := func(body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/update/", bytes.NewReader([]byte(body))))
		return rec
	}
	const flatcar = `<app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" version="1.0.0" track="stable" machineid="m1" board="amd64-usr"><event eventtype="3" eventresult="0" errorcode="9"/></app>`
	const second = `<app appid="second" version="1.0.0" track="stable" machineid="m1" board="amd64-usr"><ping active="1"/></app>`

	rec := post(`<request protocol="3.0">` + flatcar + second + `</request>`)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	resp, err := omaha.ParseResponse(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Apps) != 2 || resp.Apps[0].Status != omaha.AppStatusOK || resp.Apps[1].Status != omaha.AppStatusInternal {
		t.Fatalf("app statuses: %+v", resp.Apps)
	}
	if events, err := st.ListEvents(ctx, store.FlatcarAppID, "m1", 10); err != nil || len(events) != 1 {
		t.Fatalf("the first app's event: %d stored (%v), want 1", len(events), err)
	}

	rec = post(`<request protocol="3.0">` + second + flatcar + `</request>`)
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("first app failing: status %d, want 500", rec.Code)
	}
	if events, err := st.ListEvents(ctx, store.FlatcarAppID, "m1", 10); err != nil || len(events) != 1 {
		t.Fatalf("after a failed request: %d events (%v), want still 1", len(events), err)
	}
}

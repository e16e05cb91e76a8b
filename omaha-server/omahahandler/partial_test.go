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

// failingApp is the real store, except that the write of one application fails inside
// the request's transaction, after the apps sorted before it were written, as a database
// error in the middle of a request would.
type failingApp struct {
	*sqlite.Store
	app string
}

func (f failingApp) CheckinAll(ctx context.Context, apps []store.AppCheckin) error {
	apps = append([]store.AppCheckin(nil), apps...)
	for i, a := range apps {
		if store.NormalizeAppID(a.AppID) != f.app {
			continue
		}
		if a.Decide != nil {
			decide := a.Decide
			apps[i].Decide = func(cur *store.Instance) (*store.InstanceUpdate, error) {
				if _, err := decide(cur); err != nil {
					return nil, err
				}
				return nil, errors.New("disk I/O error")
			}
		}
	}
	return f.Store.CheckinAll(ctx, apps)
}

// TestFailureAfterRecordedApp: a request's apps are recorded in one transaction. When one
// app cannot be recorded after another was written in that transaction, the request
// fails (HTTP 500) and neither is recorded, in either order of the apps, so the client
// may resend the whole request without duplicating anything; without the failure both
// are recorded.
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
	post := func(s omahahandler.Checkins, body string) *httptest.ResponseRecorder {
		h := omahahandler.New(omahahandler.Config{Catalog: catalog.New(st, 0, nil), Store: s})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/update/", bytes.NewReader([]byte(body))))
		return rec
	}
	const flatcar = `<app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" version="1.0.0" track="stable" machineid="m1" board="amd64-usr"><event eventtype="3" eventresult="0" errorcode="9"/></app>`
	const second = `<app appid="second" version="1.0.0" track="stable" machineid="m1" board="amd64-usr"><event eventtype="3" eventresult="0" errorcode="9"/></app>`
	recorded := func(app string) int {
		t.Helper()
		events, err := st.ListEvents(ctx, app, "m1", 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(events)
	}

	for _, body := range []string{flatcar + second, second + flatcar} {
		rec := post(failingApp{st, "second"}, `<request protocol="3.0">`+body+`</request>`)
		if rec.Code != http.StatusInternalServerError {
			t.Fatalf("second app failing: status %d, want 500: %s", rec.Code, rec.Body)
		}
		if n, m := recorded(store.FlatcarAppID), recorded("second"); n != 0 || m != 0 {
			t.Fatalf("after a failed request: %d and %d events recorded, want none", n, m)
		}
		if _, err := st.GetInstances(ctx, "m1", 1); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after a failed request: instance m1: %v, want not found", err)
		}
	}

	rec := post(st, `<request protocol="3.0">`+flatcar+second+`</request>`)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	resp, err := omaha.ParseResponse(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Apps) != 2 || resp.Apps[0].Status != omaha.AppStatusOK || resp.Apps[1].Status != omaha.AppStatusOK {
		t.Fatalf("app statuses: %+v", resp.Apps)
	}
	if n, m := recorded(store.FlatcarAppID), recorded("second"); n != 1 || m != 1 {
		t.Fatalf("both apps: %d and %d events recorded, want 1 each", n, m)
	}
}

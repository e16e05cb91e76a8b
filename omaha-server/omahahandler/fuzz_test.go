package omahahandler_test

import (
	"bytes"
	"context"
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

// FuzzHandler feeds arbitrary bodies to the Omaha endpoint over a real SQLite store: the
// answer is never a 500, a 200 always carries a response that parses, and every stored
// instance belongs to a known application. Seeds: the f.Add bodies below
// (a Flatcar check, a signed error code, mixed known and unknown apps, empty and wrong
// protocol) plus anything in testdata/fuzz/FuzzHandler.
func FuzzHandler(f *testing.F) {
	for _, seed := range []string{
		`<request protocol="3.0"><app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" version="1.0.0" track="stable" machineid="m" board="amd64-usr"><ping active="1"/><updatecheck/><event eventtype="3" eventresult="2" previousversion=""/></app></request>`,
		`<request protocol="3.0"><app appid="{E96281A6-D1AF-4BDE-9A0A-97B76E56DC57}" version="1.0.0" track="stable" machineid="m"><event eventtype="3" eventresult="0" errorcode="-2147483604"/></app></request>`,
		`<request protocol="3.0"><app appid="x" version="1.0.0" track="stable" machineid="m"/><app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" version="9" track="nope" machineid="m"><updatecheck/></app></request>`,
		`<request protocol="3.0"></request>`,
		`<request protocol="3.1"/>`,
	} {
		f.Add([]byte(seed))
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(f.TempDir(), "db"), nil)
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	st.CreateApp(ctx, store.App{ID: omaha.FlatcarAppID, Name: "Flatcar"})
	st.CreateRelease(ctx, store.Release{AppID: store.FlatcarAppID, Version: "2.0.0", Board: "amd64-usr", FileName: "p.gz", Size: 10,
		SHA256: "2c8900295658d842458b04e696d88964b14b039c53fc5a1d6e3560aa4c85ff2f", Hosted: true})
	st.CreateChannel(ctx, store.Channel{AppID: store.FlatcarAppID, Name: "stable"})
	st.SetChannelRelease(ctx, store.FlatcarAppID, "stable", "amd64-usr", "2.0.0")
	st.CreateGroup(ctx, store.Group{AppID: store.FlatcarAppID, Name: "stable", Track: "stable", Channel: "stable", UpdatesEnabled: true})
	h := omahahandler.New(omahahandler.Config{Catalog: catalog.New(st, 0, nil), Store: st})
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/update/", bytes.NewReader(body)))
		switch rec.Code {
		case http.StatusOK:
			if _, err := omaha.ParseResponse(rec.Body); err != nil {
				t.Fatalf("200 with an unparsable response: %v\n%s", err, rec.Body)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		list, err := st.ListInstances(ctx, store.InstanceFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range list {
			if in.AppID != store.FlatcarAppID || in.Group != "stable" {
				t.Fatalf("instance recorded for an unknown app or group: %+v", in)
			}
		}
	})
}

package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/auth"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/pgtest"
	"github.com/switchyard-os/switchyard/omaha-server/store/postgres"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

var cluster = pgtest.NewShared(pgtest.Options{})

func TestMain(m *testing.M) {
	code := m.Run()
	cluster.Stop()
	os.Exit(code)
}

// forEachStore runs fn against a fresh SQLite store and a fresh PostgreSQL store.
func forEachStore(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), sqlite.FileName), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		st, err := postgres.Open(context.Background(), cluster.DB(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
}

type fixture struct {
	t       *testing.T
	st      store.Store
	srv     *httptest.Server
	handler http.Handler // what srv serves
	admin   *adminclient.Client
	viewer  *adminclient.Client
	dataDir string
	payload []byte
}

func token(t *testing.T, st store.Store, role store.Role) string {
	tok, hash, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateToken(context.Background(), store.Token{Hash: hash, Role: role}); err != nil {
		t.Fatal(err)
	}
	return tok
}

func newFixture(t *testing.T, st store.Store) *fixture {
	return newFixtureConfig(t, st, server.Config{})
}

func newFixtureConfig(t *testing.T, st store.Store, cfg server.Config) *fixture {
	f := &fixture{t: t, st: st, dataDir: t.TempDir()}
	cfg.DataDir, cfg.ServerName = f.dataDir, "test"
	s, err := server.New(t.Context(), cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f.handler = s
	f.srv = httptest.NewServer(s)
	t.Cleanup(f.srv.Close)
	f.admin, _ = adminclient.New(f.srv.URL, token(t, st, store.RoleAdmin), f.srv.Client())
	f.viewer, _ = adminclient.New(f.srv.URL, token(t, st, store.RoleViewer), f.srv.Client())
	f.payload = make([]byte, 300<<10)
	rand.Read(f.payload)
	return f
}

func ok[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// setup publishes 4081.2.0 (uploaded, amd64-usr) and points channel and group stable at it.
func (f *fixture) setup() {
	t, ctx := f.t, context.Background()
	ok(f.admin.CreateApp(ctx, omaha.FlatcarAppID, "Flatcar Container Linux"))(t)
	ok(f.admin.Upload(ctx, store.FlatcarAppID, adminapi.ReleaseMetadata{Version: "4081.2.0", Board: "amd64-usr",
		FileName: "flatcar_production_update.gz", Size: int64(len(f.payload))}, []byte(`{"signed":{"_type":"targets"}}`), bytes.NewReader(f.payload)))(t)
	ok(f.admin.CreateChannel(ctx, store.FlatcarAppID, "stable"))(t)
	ok(f.admin.SetChannel(ctx, store.FlatcarAppID, "stable", "amd64-usr", "4081.2.0"))(t)
	ch := "stable"
	tr := "stable"
	ok(f.admin.CreateGroup(ctx, store.FlatcarAppID, adminapi.GroupInput{Name: "stable", Track: &tr, Channel: &ch}))(t)
}

func (f *fixture) post(body []byte) (int, []byte) {
	f.t.Helper()
	resp, err := http.Post(f.srv.URL+"/v1/update/", "text/xml", bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (f *fixture) send(req *omaha.Request) *omaha.Response {
	f.t.Helper()
	body, err := req.Marshal()
	if err != nil {
		f.t.Fatal(err)
	}
	code, out := f.post(body)
	if code != http.StatusOK {
		f.t.Fatalf("status %d: %s", code, out)
	}
	resp, err := omaha.ParseResponse(bytes.NewReader(out))
	if err != nil {
		f.t.Fatalf("parsing the response: %v\n%s", err, out)
	}
	return resp
}

func host(machine, version string) omaha.Host {
	return omaha.Host{Version: version, Track: "stable", Board: "amd64-usr", Machine: "x86_64", MachineID: machine,
		BootID: "{0c288430-2504-4db4-913a-8c3de52afd07}", OEM: "qemu", AlephVersion: "3602.2.3"}
}

func (f *fixture) instance(machine string) store.InstanceDetail {
	f.t.Helper()
	d := ok(f.admin.GetInstance(context.Background(), machine))(f.t)
	if len(d) != 1 {
		f.t.Fatalf("instance %s: %+v", machine, d)
	}
	return d[0]
}

func TestFlatcarUpdateCheck(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.setup()
		req, err := os.ReadFile("testdata/flatcar-check.xml")
		if err != nil {
			t.Fatal(err)
		}
		code, body := f.post(req)
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		resp, err := omaha.ParseResponse(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		app := resp.Apps[0]
		if len(resp.Apps) != 1 || app.Status != omaha.AppStatusOK || app.Ping == nil || app.Ping.Status != "ok" || len(app.Events) != 1 || app.Events[0].Status != "ok" {
			t.Fatalf("app response: %s", body)
		}
		// Every field a Flatcar client reads, checked against the raw response.
		uc := app.UpdateCheck
		if uc.Status != omaha.UpdateStatusOK || len(uc.URLs) != 1 || len(uc.Manifests) != 1 {
			t.Fatalf("updatecheck: %s", body)
		}
		wantBase := f.srv.URL + "/packages/" + store.FlatcarAppID + "/amd64-usr/4081.2.0/"
		if uc.URLs[0].CodeBase != wantBase {
			t.Errorf("codebase %q, want %q", uc.URLs[0].CodeBase, wantBase)
		}
		m := uc.Manifests[0]
		s256 := sha256.Sum256(f.payload)
		s1 := sha1.Sum(f.payload)
		p := m.Packages[0]
		if m.Version != "4081.2.0" || p.Name != "flatcar_production_update.gz" || p.Size != uint64(len(f.payload)) || !p.Required ||
			p.Hash != base64.StdEncoding.EncodeToString(s1[:]) || p.HashSHA256 != hex.EncodeToString(s256[:]) {
			t.Errorf("manifest: %s", body)
		}
		if len(m.Actions) != 1 || m.Actions[0].Event != "postinstall" || m.Actions[0].SHA256 != base64.StdEncoding.EncodeToString(s256[:]) {
			t.Errorf("postinstall action: %s", body)
		}
		for _, frag := range []string{`required="true"`, `event="postinstall"`, `status="ok"`, `<url codebase="` + wantBase + `">`} {
			if !bytes.Contains(body, []byte(frag)) {
				t.Errorf("response lacks %s: %s", frag, body)
			}
		}
		// The URL a Flatcar engine builds serves the payload.
		offer, err := resp.Offer("")
		if err != nil {
			t.Fatal(err)
		}
		got, err := http.Get(offer.PayloadURLs()[0])
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if got.StatusCode != 200 || !bytes.Equal(data, f.payload) {
			t.Errorf("payload download: %d, %d bytes", got.StatusCode, len(data))
		}
		in := f.instance("dbff85b41ae14f41bde761eefbdafaac")
		if in.Status != store.StatusUpdateGranted || in.Version != "3602.2.3" || in.UpdateVersion != "4081.2.0" ||
			in.OEM != "vmware" || in.AlephVersion != "2905.2.3" || in.Group != "stable" || in.IP != "127.0.0.1" || in.Board != "amd64-usr" {
			t.Errorf("instance after the check: %+v", in)
		}
	})
}

func TestUpdateLifecycle(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.setup()
		h := host("m1", "4081.1.0")
		if _, err := f.send(omaha.NewUpdateCheckRequest(h, false, omaha.EventRebooted(""))).Offer(""); err != nil {
			t.Fatalf("no offer: %v", err)
		}
		steps := []struct {
			name  string
			req   *omaha.Request
			want  store.Status
			acked int
		}{
			{"download started", omaha.NewEventRequest(h, omaha.EventDownloadStarted()), store.StatusDownloading, 1},
			{"download finished", omaha.NewEventRequest(h, omaha.EventDownloadFinished()), store.StatusDownloaded, 1},
			{"installed", omaha.NewEventRequest(h, omaha.EventInstalled()), store.StatusInstalled, 1},
			{"ping while waiting for reboot", omaha.NewPingRequest(h), store.StatusInstalled, 0},
		}
		for _, s := range steps {
			resp := f.send(s.req)
			if n := len(resp.Apps[0].Events); n != s.acked {
				t.Errorf("%s: %d event acks, want %d", s.name, n, s.acked)
			}
			if got := f.instance("m1").Status; got != s.want {
				t.Errorf("%s: status %s, want %s", s.name, got, s.want)
			}
		}
		// After the reboot: 3/2 with the previous version; the host is up to date.
		h.Version = "4081.2.0"
		resp := f.send(omaha.NewUpdateCheckRequest(h, false, omaha.EventRebooted("4081.1.0")))
		if _, err := resp.Offer(""); err != omaha.ErrNoUpdate {
			t.Fatalf("after the update: %v, want noupdate", err)
		}
		in := f.instance("m1")
		if in.Status != store.StatusComplete || in.Version != "4081.2.0" {
			t.Errorf("after the reboot: %+v", in)
		}
		var seq []store.Status
		for i := len(in.History) - 1; i >= 0; i-- {
			seq = append(seq, in.History[i].Status)
		}
		want := []store.Status{store.StatusUndefined, store.StatusUpdateGranted, store.StatusDownloading, store.StatusDownloaded, store.StatusInstalled, store.StatusComplete}
		if fmt.Sprint(seq[len(seq)-len(want)+1:]) != fmt.Sprint(want[1:]) {
			t.Errorf("history %v, want %v", seq, want)
		}
		// The next routine check (3/2 with "") changes nothing and is noupdate.
		if _, err := f.send(omaha.NewUpdateCheckRequest(h, false, omaha.EventRebooted(""))).Offer(""); err != omaha.ErrNoUpdate {
			t.Errorf("routine check: %v", err)
		}
		events := ok(f.admin.ListEvents(context.Background(), store.FlatcarAppID, "m1"))(t)
		if len(events) != 4 {
			t.Errorf("stored events %+v, want 13/1, 14/1, 3/1, 3/2 (routine 3/2 not stored)", events)
		}
	})
}

func TestFailures(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.setup()
		tests := []struct {
			name     string
			event    *omaha.Event
			want     store.Status
			wantCode int64
		}{
			{"rollback", omaha.EventRollback(0), store.StatusRolledBack, 44},
			{"rollback with flags", omaha.EventRollback(omaha.ErrorFlagTestOmahaURL), store.StatusRolledBack, 1<<28 | 44},
			{"error with flags", omaha.EventError(omaha.ErrorCodeOmahaResponseInvalid|omaha.ErrorFlagTestOmahaURL, ""), store.StatusError, 268435490},
			{"nebraska installed", omaha.EventUpdateInstalled(), store.StatusInstalled, 0},
			{"unknown event is stored", &omaha.Event{Type: 4242, Result: 7}, store.StatusUpdateGranted, 0},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := host(fmt.Sprintf("f%d", i), "4081.1.0")
				f.send(omaha.NewUpdateCheckRequest(h, false))
				resp := f.send(omaha.NewEventRequest(h, tt.event))
				if len(resp.Apps[0].Events) != 1 || resp.Apps[0].Events[0].Status != "ok" {
					t.Errorf("ack: %+v", resp.Apps[0])
				}
				in := f.instance(h.MachineID)
				if in.Status != tt.want || in.LastErrorCode != tt.wantCode {
					t.Errorf("status %s code %d, want %s %d", in.Status, in.LastErrorCode, tt.want, tt.wantCode)
				}
				ev := ok(f.admin.ListEvents(context.Background(), store.FlatcarAppID, h.MachineID))(t)
				if len(ev) != 1 || ev[0].Type != int(tt.event.Type) || ev[0].ErrorCode != int64(tt.event.Code()) {
					t.Errorf("stored events %+v", ev)
				}
			})
		}
	})
}

func TestHoldsAreNoUpdate(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.setup()
		ctx := context.Background()
		off := false
		ok(f.admin.UpdateGroup(ctx, store.FlatcarAppID, "stable", adminapi.GroupInput{UpdatesEnabled: &off}))(t)
		resp := f.send(omaha.NewUpdateCheckRequest(host("h1", "4081.1.0"), false))
		if resp.Apps[0].Status != omaha.AppStatusOK || resp.Apps[0].UpdateCheck.Status != omaha.UpdateStatusNoUpdate {
			t.Errorf("updates disabled: %+v %+v", resp.Apps[0], resp.Apps[0].UpdateCheck)
		}
		on := true
		ok(f.admin.UpdateGroup(ctx, store.FlatcarAppID, "stable", adminapi.GroupInput{UpdatesEnabled: &on}))(t)
		if _, err := f.send(omaha.NewUpdateCheckRequest(host("h1", "4081.1.0"), false)).Offer(""); err != nil {
			t.Errorf("updates re-enabled: %v", err)
		}
		// No release for the board: noupdate.
		h := host("h2", "4081.1.0")
		h.Board = "arm64-usr"
		if _, err := f.send(omaha.NewUpdateCheckRequest(h, false)).Offer(""); err != omaha.ErrNoUpdate {
			t.Errorf("arm64 without a release: %v", err)
		}
		// Newer than the channel: noupdate.
		if _, err := f.send(omaha.NewUpdateCheckRequest(host("h3", "4081.10.0"), false)).Offer(""); err != omaha.ErrNoUpdate {
			t.Errorf("newer host: %v", err)
		}
	})
}

func TestBadOmahaInput(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.setup()
		good, _ := os.ReadFile("testdata/flatcar-check.xml")
		replace := func(old, new string) []byte { return bytes.Replace(good, []byte(old), []byte(new), 1) }
		// Two apps: the first valid, the second with a machine id holding a quote.
		app := good[bytes.Index(good, []byte("<app ")) : bytes.Index(good, []byte("</app>"))+len("</app>")]
		badSecond := bytes.Replace(app, []byte(`machineid="`), []byte(`machineid="x&quot;`), 1)
		twoApps := bytes.Replace(good, app, append(append([]byte{}, app...), badSecond...), 1)
		tests := []struct {
			name       string
			body       []byte
			wantHTTP   int
			wantStatus omaha.AppStatus
			wantText   string // in the body of an HTTP error
		}{
			{"malformed XML", []byte(`<request protocol="3.0"><app`), 400, "", ""},
			{"not XML", []byte("GET / HTTP/1.0"), 400, "", ""},
			{"wrong protocol", bytes.Replace(good, []byte(`protocol="3.0"`), []byte(`protocol="2.0"`), 1), 400, "", ""},
			{"entity", []byte(`<!DOCTYPE r [<!ENTITY x "y">]><request protocol="3.0">&x;</request>`), 400, "", ""},
			{"oversized body", append(good, bytes.Repeat([]byte(" "), 2<<20)...), 413, "", ""},
			{"huge attribute", bytes.Replace(good, []byte(`oem="vmware"`), []byte(`oem="`+strings.Repeat("v", 10000)+`"`), 1), 400, "", ""},
			{"invalid version", bytes.Replace(good, []byte(`version="3602.2.3"`), []byte(`version="three"`), 1), 200, omaha.AppStatusInvalidVersion, ""},
			{"unknown app", bytes.Replace(good, []byte("e96281a6"), []byte("00000000"), 1), 200, omaha.AppStatusUnknownApplication, ""},
			{"unknown group", bytes.Replace(good, []byte(`track="stable"`), []byte(`track="nope"`), 1), 200, omaha.AppStatusUnknownApplicationOrGroup, ""},
			// The client's errors without an Omaha app status: HTTP 400 naming the field.
			{"machine id with a quote", replace(`machineid="`, `machineid="a&quot;`), 400, "", "app@machineid"},
			{"track with spaces", replace(`track="stable"`, `track="stable beta"`), 400, "", "app@track"},
			{"control character in oem", replace(`oem="vmware"`, `oem="vm&#9;ware"`), 400, "", "app@oem"},
			{"bidi override in the alias", replace(`machinealias=""`, `machinealias="web-&#x202E;10"`), 400, "", "app@machinealias"},
			{"second app invalid", twoApps, 400, "", "app@machineid"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				code, body := f.post(tt.body)
				if code != tt.wantHTTP {
					t.Fatalf("HTTP %d, want %d: %.200s", code, tt.wantHTTP, body)
				}
				if !bytes.Contains(body, []byte(tt.wantText)) {
					t.Errorf("body %.200q does not name %q", body, tt.wantText)
				}
				if tt.wantStatus != "" {
					resp, err := omaha.ParseResponse(bytes.NewReader(body))
					if err != nil {
						t.Fatal(err)
					}
					if resp.Apps[0].Status != tt.wantStatus {
						t.Errorf("app status %q, want %q", resp.Apps[0].Status, tt.wantStatus)
					}
				}
			})
		}
		if l := ok(f.admin.ListInstances(context.Background(), store.InstanceFilter{}))(t); len(l) != 0 {
			t.Errorf("bad requests wrote instances: %+v", l)
		}
	})
}

func TestAdminAPI(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		ctx := context.Background()
		f.setup()
		// Viewer reads, may not write; no token, no entry.
		if _, err := f.viewer.ListApps(ctx); err != nil {
			t.Errorf("viewer read: %v", err)
		}
		if _, err := f.viewer.CreateApp(ctx, "x", "X"); !adminclient.IsStatus(err, 403) {
			t.Errorf("viewer write: %v", err)
		}
		anon, _ := adminclient.New(f.srv.URL, "", nil)
		if _, err := anon.ListApps(ctx); !adminclient.IsStatus(err, 401) {
			t.Errorf("no token: %v", err)
		}
		// Duplicates are 409, unknown things 404, bad input 400.
		dup := adminapi.ReleaseMetadata{Version: "4081.2.0", Board: "amd64-usr", FileName: "flatcar_production_update.gz", Size: int64(len(f.payload))}
		if _, err := f.admin.Upload(ctx, store.FlatcarAppID, dup, nil, bytes.NewReader(f.payload)); !adminclient.IsStatus(err, 409) {
			t.Errorf("duplicate upload: %v", err)
		}
		if _, err := f.admin.CreateApp(ctx, omaha.FlatcarAppID, "again"); !adminclient.IsStatus(err, 409) {
			t.Errorf("duplicate app: %v", err)
		}
		if _, err := f.admin.SetChannel(ctx, store.FlatcarAppID, "stable", "amd64-usr", "9.9.9"); !adminclient.IsStatus(err, 404) {
			t.Errorf("unknown version: %v", err)
		}
		if _, err := f.admin.SetChannel(ctx, store.FlatcarAppID, "stable", "amd64-usr", "not a version"); !adminclient.IsStatus(err, 400) {
			t.Errorf("bad version: %v", err)
		}
		bad := adminapi.ReleaseMetadata{Version: "v1!", Board: "amd64-usr", FileName: "x.gz", Size: 3}
		if _, err := f.admin.Upload(ctx, store.FlatcarAppID, bad, nil, strings.NewReader("abc")); !adminclient.IsStatus(err, 400) {
			t.Errorf("invalid version upload: %v", err)
		}
		wrong := adminapi.ReleaseMetadata{Version: "4081.3.0", Board: "amd64-usr", FileName: "x.gz", Size: 3, SHA256: strings.Repeat("0", 64)}
		if _, err := f.admin.Upload(ctx, store.FlatcarAppID, wrong, nil, strings.NewReader("abc")); !adminclient.IsStatus(err, 400) {
			t.Errorf("hash mismatch: %v", err)
		}
		if _, err := f.admin.ListGroups(ctx, "nope"); !adminclient.IsStatus(err, 404) {
			t.Errorf("unknown app: %v", err)
		}
		tr, ch := "stable", "nope"
		if _, err := f.admin.CreateGroup(ctx, store.FlatcarAppID, adminapi.GroupInput{Name: "g2", Track: &tr, Channel: &ch}); !adminclient.IsStatus(err, 404) {
			t.Errorf("unknown channel: %v", err)
		}
		ch = "stable"
		if _, err := f.admin.CreateGroup(ctx, store.FlatcarAppID, adminapi.GroupInput{Name: "g2", Track: &tr, Channel: &ch}); !adminclient.IsStatus(err, 409) {
			t.Errorf("duplicate track: %v", err)
		}
		// A release hosted elsewhere is offered with its own URL.
		ext := adminapi.ReleaseMetadata{Version: "4081.3.0", Board: "amd64-usr", Size: 1000, SHA256: strings.Repeat("ab", 32),
			URL: "https://mirror.example/amd64-usr/4081.3.0/flatcar_production_update.gz"}
		ok(f.admin.PublishExternal(ctx, store.FlatcarAppID, ext))(t)
		ok(f.admin.SetChannel(ctx, store.FlatcarAppID, "stable", "amd64-usr", "4081.3.0"))(t)
		offer, err := f.send(omaha.NewUpdateCheckRequest(host("e1", "4081.2.0"), false)).Offer("")
		if err != nil {
			t.Fatal(err)
		}
		if offer.URLs[0] != "https://mirror.example/amd64-usr/4081.3.0/" || offer.Package.Hash != "" || offer.Version != "4081.3.0" {
			t.Errorf("external offer %+v", offer)
		}
		// Listing with filters.
		f.send(omaha.NewUpdateCheckRequest(host("e2", "4081.3.0"), false))
		list := ok(f.viewer.ListInstances(ctx, store.InstanceFilter{AppID: omaha.FlatcarAppID, Version: "4081.3.0"}))(t)
		if len(list) != 1 || list[0].MachineID != "e2" {
			t.Errorf("filtered list %+v", list)
		}
		if _, err := f.admin.GetInstance(ctx, "nope"); !adminclient.IsStatus(err, 404) {
			t.Errorf("unknown instance: %v", err)
		}
	})
}

// TestTruncatedUpload sends an upload whose body ends before its Content-Length: no row,
// no file.
func TestTruncatedUpload(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.setup()
		tok := token(t, st, store.RoleAdmin)
		meta := `{"version":"4081.5.0","board":"amd64-usr","file_name":"p.gz","size":100000}`
		body := "--B\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n" + meta +
			"\r\n--B\r\nContent-Disposition: form-data; name=\"payload\"; filename=\"p.gz\"\r\n\r\n" + strings.Repeat("x", 5000)
		// The upload goes to a server of its own, which reports when the handler returned
		// (it cleans up after the client went away).
		served := make(chan struct{})
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer close(served)
			f.handler.ServeHTTP(w, r)
		}))
		defer up.Close()
		conn, err := net.Dial("tcp", strings.TrimPrefix(up.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /api/v1/apps/%s/releases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
			"Content-Type: multipart/form-data; boundary=B\r\nContent-Length: %d\r\n\r\n%s", store.FlatcarAppID, tok, len(body)+100000, body)
		conn.(*net.TCPConn).CloseWrite()
		reply, _ := io.ReadAll(conn)
		conn.Close()
		if bytes.Contains(reply, []byte(" 201 ")) {
			t.Fatalf("truncated upload accepted: %s", reply)
		}
		<-served
		_, err = st.GetRelease(context.Background(), store.FlatcarAppID, "4081.5.0", "amd64-usr")
		left, _ := filepath.Glob(filepath.Join(f.dataDir, "packages", "*", "*", "4081.5.0", "*"))
		tmp, _ := os.ReadDir(filepath.Join(f.dataDir, "packages", ".tmp"))
		if err == nil || len(left) > 0 || len(tmp) > 0 {
			t.Fatalf("after a truncated upload: release err %v, files %v, temp files %d", err, left, len(tmp))
		}
	})
}

func TestPayloadHosting(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.setup()
		u := f.srv.URL + "/packages/" + store.FlatcarAppID + "/amd64-usr/4081.2.0/flatcar_production_update.gz"
		sum := sha256.Sum256(f.payload)
		etag := `"` + hex.EncodeToString(sum[:]) + `"`
		tests := []struct {
			name       string
			method     string
			path       string
			header     map[string]string
			wantStatus int
			wantBody   []byte
			wantLen    string
		}{
			{"whole", "GET", u, nil, 200, f.payload, fmt.Sprint(len(f.payload))},
			{"head", "HEAD", u, nil, 200, nil, fmt.Sprint(len(f.payload))},
			{"range", "GET", u, map[string]string{"Range": "bytes=100-199"}, 206, f.payload[100:200], "100"},
			{"resume", "GET", u, map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(f.payload)-10)}, 206, f.payload[len(f.payload)-10:], "10"},
			{"if-range matches", "GET", u, map[string]string{"Range": "bytes=0-9", "If-Range": etag}, 206, f.payload[:10], "10"},
			{"if-range stale", "GET", u, map[string]string{"Range": "bytes=0-9", "If-Range": `"old"`}, 200, f.payload, fmt.Sprint(len(f.payload))},
			{"not modified", "GET", u, map[string]string{"If-None-Match": etag}, 304, nil, ""},
			{"bad range", "GET", u, map[string]string{"Range": "bytes=999999999-"}, 416, nil, ""},
			{"wrong name", "GET", strings.TrimSuffix(u, ".gz"), nil, 404, nil, ""},
			{"unknown version", "GET", strings.Replace(u, "4081.2.0", "1.0.0", 1), nil, 404, nil, ""},
			{"traversal", "GET", f.srv.URL + "/packages/..%2f..%2f/amd64-usr/4081.2.0/x", nil, 404, nil, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				req, _ := http.NewRequest(tt.method, tt.path, nil)
				for k, v := range tt.header {
					req.Header.Set(k, v)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.wantStatus {
					t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
				}
				if tt.wantBody != nil && !bytes.Equal(body, tt.wantBody) {
					t.Errorf("body differs (%d bytes)", len(body))
				}
				if tt.wantLen != "" && resp.Header.Get("Content-Length") != tt.wantLen {
					t.Errorf("Content-Length %q, want %q", resp.Header.Get("Content-Length"), tt.wantLen)
				}
				if tt.wantStatus < 300 && resp.Header.Get("ETag") != etag {
					t.Errorf("ETag %q, want %q", resp.Header.Get("ETag"), etag)
				}
			})
		}
	})
}

// get fetches path from the fixture's server: status code and body.
func (f *fixture) get(path string) (int, string) {
	f.t.Helper()
	resp, err := http.Get(f.srv.URL + path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// failingCheckpoints is a SQLite store whose background checkpoint fails.
type failingCheckpoints struct{ *sqlite.Store }

func (failingCheckpoints) CheckpointErr() error { return errors.New("disk full") }

// TestHealthReportsCheckpoints checks that /healthz stays 200 with a warning line while the
// store's background checkpoint fails, and that the gauge says so (0 while it works).
func TestHealthReportsCheckpoints(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), sqlite.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, c := range []struct {
		st     store.Store
		health string
		gauge  string
	}{
		{st, "ok\n", "switchyard_omaha_server_store_checkpoint_failing 0"},
		{failingCheckpoints{st}, "ok\nwarning: background checkpoint failing: disk full\n", "switchyard_omaha_server_store_checkpoint_failing 1"},
	} {
		f := newFixture(t, c.st)
		if code, body := f.get("/healthz"); code != 200 || body != c.health {
			t.Errorf("healthz %d %q, want 200 %q", code, body, c.health)
		}
		if _, m := f.get("/metrics"); !strings.Contains(m, c.gauge) {
			t.Errorf("metrics lack %q", c.gauge)
		}
	}
}

func TestMetricsAndHealth(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.setup()
		f.send(omaha.NewUpdateCheckRequest(host("m", "4081.1.0"), false))
		f.post([]byte("junk"))
		if code, body := f.get("/healthz"); code != 200 || body != "ok\n" {
			t.Errorf("healthz %d %q", code, body)
		}
		_, m := f.get("/metrics")
		for _, want := range []string{
			`switchyard_omaha_server_update_checks_total{result="update"} 1`,
			`switchyard_omaha_server_refused_requests_total{reason="malformed"} 1`,
			`switchyard_omaha_server_http_requests_total{code="200",route="/v1/update/"} 1`,
			`go_goroutines`,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

func TestOptionalMounts(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mark := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, name+" "+r.URL.Path) })
	}
	s, err := server.New(t.Context(), server.Config{DataDir: t.TempDir(), FleetLock: mark("fleetlock"), Dashboard: mark("dashboard")}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct{ method, path, want string }{
		{"POST", "/v1/pre-reboot", "fleetlock /v1/pre-reboot"},
		{"POST", "/v1/steady-state", "fleetlock /v1/steady-state"},
		// Other methods reach the handler too, which answers FleetLock's JSON 405.
		{"GET", "/v1/pre-reboot", "fleetlock /v1/pre-reboot"},
		{"PUT", "/v1/steady-state", "fleetlock /v1/steady-state"},
		{"GET", "/", "dashboard /"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Body.String() != tt.want {
			t.Errorf("%s %s: %q, want %q", tt.method, tt.path, rec.Body.String(), tt.want)
		}
	}
}

// TestNamesShownToOperators: the admin API refuses names and tracks with control
// characters or bidi overrides (they would read differently in the dashboard, syctl or a
// log) and stores nothing.
func TestNamesShownToOperators(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), sqlite.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := newFixture(t, st)
	f.setup()
	ctx := context.Background()
	strp := func(s string) *string { return &s }
	tests := []struct {
		name string
		do   func() error
	}{
		{"app name with RLO", func() error { _, err := f.admin.CreateApp(ctx, "demo", "demo\u202eppa"); return err }},
		{"app name with a newline", func() error { _, err := f.admin.CreateApp(ctx, "demo", "demo\nadmin=1"); return err }},
		{"app name with C1 CSI", func() error { _, err := f.admin.CreateApp(ctx, "demo", "demo\u009b2J"); return err }},
		{"channel with LRI", func() error { _, err := f.admin.CreateChannel(ctx, store.FlatcarAppID, "beta\u2066"); return err }},
		{"group with RLE", func() error {
			_, err := f.admin.CreateGroup(ctx, store.FlatcarAppID, adminapi.GroupInput{Name: "can\u202bary", Track: strp("canary"), Channel: strp("stable")})
			return err
		}},
		{"track with PDI", func() error {
			_, err := f.admin.CreateGroup(ctx, store.FlatcarAppID, adminapi.GroupInput{Name: "canary", Track: strp("canary\u2069"), Channel: strp("stable")})
			return err
		}},
		{"track changed to a zero-width joiner", func() error {
			_, err := f.admin.UpdateGroup(ctx, store.FlatcarAppID, "stable", adminapi.GroupInput{Track: strp("sta\u200dble")})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); !adminclient.IsStatus(err, http.StatusBadRequest) {
				t.Errorf("got %v, want 400", err)
			}
		})
	}
	if apps := ok(f.admin.ListApps(ctx))(t); len(apps) != 1 {
		t.Errorf("apps after refusals: %+v", apps)
	}
	if chans := ok(f.admin.ListChannels(ctx, store.FlatcarAppID))(t); len(chans) != 1 {
		t.Errorf("channels after refusals: %+v", chans)
	}
	if groups := ok(f.admin.ListGroups(ctx, store.FlatcarAppID))(t); len(groups) != 1 || groups[0].Track != "stable" {
		t.Errorf("groups after refusals: %+v", groups)
	}
}

// TestInstancePaging: GET /api/v1/instances refuses a limit above adminapi.MaxInstancePage
// and pages with a Link rel="next" header; the client walks every instance once.
func TestInstancePaging(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.setup()
		ctx := context.Background()
		var want []string
		for i := range 7 {
			m := fmt.Sprintf("page-%02d", i)
			want = append(want, m)
			f.send(omaha.NewUpdateCheckRequest(host(m, "4081.1.0"), false))
		}
		if _, _, err := f.viewer.ListInstancesPage(ctx, store.InstanceFilter{Limit: adminapi.MaxInstancePage + 1}, ""); !adminclient.IsStatus(err, http.StatusBadRequest) {
			t.Errorf("limit above the maximum: %v, want 400", err)
		}
		if _, _, err := f.viewer.ListInstancesPage(ctx, store.InstanceFilter{}, "not a cursor"); !adminclient.IsStatus(err, http.StatusBadRequest) {
			t.Errorf("bad cursor: %v, want 400", err)
		}
		// Pages of 3: 3, 3, 1, then no next link.
		var got []string
		var sizes []int
		after := ""
		for range 10 {
			page, next, err := f.viewer.ListInstancesPage(ctx, store.InstanceFilter{Limit: 3}, after)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(page))
			for _, in := range page {
				got = append(got, in.MachineID)
			}
			if next == "" {
				break
			}
			after = next
		}
		if fmt.Sprint(sizes) != "[3 3 1]" || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("pages of %v: %v, want %v", sizes, got, want)
		}
		// The whole list, and a limit spanning pages.
		all := ok(f.viewer.ListInstances(ctx, store.InstanceFilter{}))(t)
		if len(all) != 7 {
			t.Errorf("all: %d instances", len(all))
		}
		if five := ok(f.viewer.ListInstances(ctx, store.InstanceFilter{Limit: 5}))(t); len(five) != 5 || five[4].MachineID != "page-04" {
			t.Errorf("limit 5: %+v", five)
		}
		// Raw: the next link is a relative URL carrying the filters.
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/api/v1/instances?limit=2&status=update-granted", nil)
		req.Header.Set("Authorization", "Bearer "+token(t, st, store.RoleViewer))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if link := resp.Header.Get("Link"); !strings.HasPrefix(link, "</api/v1/instances?") || !strings.Contains(link, "status=update-granted") || !strings.HasSuffix(link, `>; rel="next"`) {
			t.Errorf("Link %q", link)
		}
	})
}

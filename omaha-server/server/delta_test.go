package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
	"github.com/switchyard-os/switchyard/omaha-server/tufhost"
	sytuf "github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
)

// check sends an update check from machine on version, with delta_okay as given, and
// returns the offer (nil for noupdate).
func (f *fixture) check(machine, version string, deltaOK bool) *omaha.Offer {
	f.t.Helper()
	req := omaha.NewUpdateCheckRequest(host(machine, version), false)
	req.Apps[0].DeltaOK = deltaOK
	o, err := f.send(req).Offer("")
	if err == omaha.ErrNoUpdate {
		return nil
	}
	if err != nil {
		f.t.Fatalf("%s: %v", machine, err)
	}
	return o
}

func (f *fixture) uploadDelta(source, name string, data, targets []byte) (store.Delta, error) {
	return f.admin.UploadDelta(context.Background(), store.FlatcarAppID, "amd64-usr", "4081.2.0",
		adminapi.DeltaMetadata{SourceVersion: source, FileName: name, Size: int64(len(data))}, targets, bytes.NewReader(data))
}

// TestDeltaOffer: a host that runs a delta's source version and sent delta_okay="true"
// is offered the delta (its file, size and hashes, IsDeltaPayload="true", downloadable
// from the codebase); without delta_okay, or on a version no delta starts from, it gets
// the full payload. Deltas that clash with what the release holds are refused and the
// release's files stay intact. A delta grant counts against the caps like a full one.
func TestDeltaOffer(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.setup()
		ctx := context.Background()
		delta := make([]byte, 20<<10)
		rand.Read(delta)
		d := ok(f.uploadDelta("4081.1.0", "delta-4081.1.0.sy", delta, nil))(t)
		if d.Version != "4081.2.0" || d.SourceVersion != "4081.1.0" || d.Size != int64(len(delta)) || !d.Hosted {
			t.Fatalf("uploaded %+v", d)
		}
		ext := ok(f.admin.PublishDeltaExternal(ctx, store.FlatcarAppID, "amd64-usr", "4081.2.0", adminapi.DeltaMetadata{
			SourceVersion: "4080.0.0", URL: "https://mirror.example.com/deltas/d-4080.sy", Size: 777, SHA256: strings.Repeat("ab", 32)}))(t)
		if ext.Hosted || ext.FileName != "d-4080.sy" {
			t.Fatalf("external delta %+v", ext)
		}

		dsum := sha256.Sum256(delta)
		full := sha256.Sum256(f.payload)
		o := f.check("m-delta", "4081.1.0", true)
		if o == nil || !o.IsDeltaPayload || o.Version != "4081.2.0" || o.Package.Name != "delta-4081.1.0.sy" ||
			o.Package.Size != uint64(len(delta)) || o.Package.HashSHA256 != hex.EncodeToString(dsum[:]) || !bytes.Equal(o.SHA256, dsum[:]) {
			t.Fatalf("host on the delta's source with delta_okay: offer %+v", o)
		}
		if code, body := f.get(strings.TrimPrefix(o.PayloadURLs()[0], f.srv.URL)); code != 200 || body != string(delta) {
			t.Fatalf("downloading the offered delta: %d, %d bytes", code, len(body))
		}
		for i, tc := range []struct {
			name, version string
			deltaOK       bool
		}{
			{"no delta_okay", "4081.1.0", false},
			{"no delta from this version", "4081.0.0", true},
		} {
			o := f.check(fmt.Sprintf("m-full-%d", i), tc.version, tc.deltaOK)
			if o == nil || o.IsDeltaPayload || o.Package.Name != "flatcar_production_update.gz" || !bytes.Equal(o.SHA256, full[:]) {
				t.Errorf("%s: offer %+v, want the full payload", tc.name, o)
			}
		}
		if o := f.check("m-ext", "4080.0.0", true); o == nil || !o.IsDeltaPayload ||
			o.PayloadURLs()[0] != "https://mirror.example.com/deltas/d-4080.sy" || o.Package.Size != 777 {
			t.Errorf("host on the external delta's source: %+v", o)
		}

		for _, tc := range []struct {
			name, source, file string
			status             int
		}{
			{"second delta from one source", "4081.1.0", "other.sy", http.StatusConflict},
			{"the full payload's name", "4079.0.0", "flatcar_production_update.gz", http.StatusConflict},
			{"another delta's name", "4079.0.0", "delta-4081.1.0.sy", http.StatusConflict},
			{"source not below the release", "4081.3.0", "up.sy", http.StatusBadRequest},
		} {
			junk := []byte("junk that must not replace anything")
			if _, err := f.uploadDelta(tc.source, tc.file, junk, nil); !adminclient.IsStatus(err, tc.status) {
				t.Errorf("%s: %v, want %d", tc.name, err, tc.status)
			}
		}
		if _, err := f.admin.UploadDelta(ctx, store.FlatcarAppID, "amd64-usr", "9.9.9", adminapi.DeltaMetadata{
			SourceVersion: "9.9.8", FileName: "x.sy", Size: 3}, nil, strings.NewReader("abc")); !adminclient.IsStatus(err, http.StatusNotFound) {
			t.Errorf("a delta of no release: %v, want 404", err)
		}
		base := "/packages/" + store.FlatcarAppID + "/amd64-usr/4081.2.0/"
		if code, body := f.get(base + "flatcar_production_update.gz"); code != 200 || body != string(f.payload) {
			t.Errorf("the full payload after the refused deltas: %d, %d bytes", code, len(body))
		}
		if code, body := f.get(base + "delta-4081.1.0.sy"); code != 200 || body != string(delta) {
			t.Errorf("the delta after the refused deltas: %d, %d bytes", code, len(body))
		}
		if ds := ok(f.viewer.ListDeltas(ctx, store.FlatcarAppID, "amd64-usr", "4081.2.0"))(t); len(ds) != 2 {
			t.Errorf("listed %d deltas, want 2: %+v", len(ds), ds)
		}

		t.Run("caps count a delta grant", func(t *testing.T) {
			f.setPolicy(policy.Policy{MaxPerPeriod: 1, Period: policy.Duration(time.Hour)})
			if o := f.check("cap-delta", "4081.1.0", true); o == nil || !o.IsDeltaPayload {
				t.Fatalf("the first host (delta) under a cap of 1: %+v", o)
			}
			if o := f.check("cap-full", "4081.0.0", false); o != nil {
				t.Fatalf("a second host got %+v past a cap of 1 already used by a delta grant", o)
			}
			if o := f.check("cap-delta", "4081.1.0", true); o == nil || !o.IsDeltaPayload {
				t.Errorf("the delta grant is not re-served: %+v", o)
			}
			// Falling back to the full payload is the same grant, re-served too.
			if o := f.check("cap-delta", "4081.1.0", false); o == nil || o.IsDeltaPayload {
				t.Errorf("the delta host asking without delta_okay: %+v, want the full payload", o)
			}
			rs := ok(f.admin.RolloutStatus(ctx, store.FlatcarAppID, "stable", "4081.2.0"))(t)
			if rs.Granted != 1 {
				t.Errorf("rollout status %+v, want 1 grant", rs)
			}
		})
	})
}

// TestTUFDelta: a delta goes live only when its targets metadata pins it as its own
// target, with the delta's source version, beside the full payload's; the published
// targets list both and the TUF target path serves the delta's bytes.
func TestTUFDelta(t *testing.T) {
	ctx := context.Background()
	root := newTUFRoot(t)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := newFixtureConfig(t, st, server.Config{TUF: &tufhost.Config{
		Dir: filepath.Join(t.TempDir(), "tuf"), InitialRoot: root.data,
		Keys: []signature.Signer{root.signers[sytuf.RoleSnapshot], root.signers[sytuf.RoleTimestamp]},
	}})
	app := store.FlatcarAppID
	ok(f.admin.CreateApp(ctx, app, "Flatcar"))(t)
	full := bytes.Repeat([]byte("full payload "), 4000)
	delta := bytes.Repeat([]byte("delta "), 700)
	// One working directory, as a release engineer keeps it: each signing is a new
	// targets version, so only the pins tell the refused uploads from the accepted one.
	rp, err := repo.Init(t.TempDir(), root.data)
	if err != nil {
		t.Fatal(err)
	}
	add := func(name string, p []byte, c sytuf.Custom) {
		if err := rp.AddTarget(name, repo.Target{Length: int64(len(p)), SHA256: sha256.Sum256(p), Custom: c}); err != nil {
			t.Fatal(err)
		}
	}
	signTargets := func() []byte {
		data, err := rp.SignTargets(sytuf.Expiry(time.Now(), sytuf.DefaultTargetsExpiry), root.signers[sytuf.RoleTargets])
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	add("amd64-usr/2.0.0/update.sy", full, sytuf.Custom{Version: "2.0.0", Board: "amd64-usr", ReleaseCounter: 2})
	ok(f.admin.Upload(ctx, app, adminapi.ReleaseMetadata{Version: "2.0.0", Board: "amd64-usr", FileName: "update.sy",
		Size: int64(len(full))}, signTargets(), bytes.NewReader(full)))(t)
	sign := func(source string) []byte {
		c := sytuf.Custom{Version: "2.0.0", Board: "amd64-usr", ReleaseCounter: 2}
		if source != "" {
			c.Extra = map[string]any{sytuf.FieldSourceVersion: source}
		}
		add("amd64-usr/2.0.0/delta-1.0.0.sy", delta, c)
		return signTargets()
	}
	meta := adminapi.DeltaMetadata{SourceVersion: "1.0.0", FileName: "delta-1.0.0.sy", Size: int64(len(delta))}
	for _, tc := range []struct{ name, source string }{{"no source_version", ""}, {"another source_version", "1.5.0"}} {
		if _, err := f.admin.UploadDelta(ctx, app, "amd64-usr", "2.0.0", meta, sign(tc.source), bytes.NewReader(delta)); !adminclient.IsStatus(err, http.StatusBadRequest) {
			t.Fatalf("%s: %v, want a 400", tc.name, err)
		}
	}
	if ds := ok(f.admin.ListDeltas(ctx, app, "amd64-usr", "2.0.0"))(t); len(ds) != 0 {
		t.Fatalf("refused deltas were stored: %+v", ds)
	}
	d := ok(f.admin.UploadDelta(ctx, app, "amd64-usr", "2.0.0", meta, sign("1.0.0"), bytes.NewReader(delta)))(t)
	if !d.HasTargetsMetadata {
		t.Errorf("delta %+v carries no targets metadata", d)
	}

	state := ok(f.admin.TUFState(ctx))(t)
	code, body := f.get(fmt.Sprintf("/tuf/%d.targets.json", state.TargetsVersion))
	if code != 200 {
		t.Fatalf("targets.json: %d", code)
	}
	var doc struct {
		Signed struct {
			Targets map[string]struct {
				Length int64             `json:"length"`
				Hashes map[string]string `json:"hashes"`
				Custom map[string]any    `json:"custom"`
			} `json:"targets"`
		} `json:"signed"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	dt, okd := doc.Signed.Targets["amd64-usr/2.0.0/delta-1.0.0.sy"]
	_, okf := doc.Signed.Targets["amd64-usr/2.0.0/update.sy"]
	if !okd || !okf || dt.Custom[sytuf.FieldSourceVersion] != "1.0.0" || dt.Length != int64(len(delta)) {
		t.Fatalf("published targets: %+v", doc.Signed.Targets)
	}
	sum := sha256.Sum256(delta)
	if code, got := f.get("/tuf/targets/amd64-usr/2.0.0/" + hex.EncodeToString(sum[:]) + ".delta-1.0.0.sy"); code != 200 || got != string(delta) {
		t.Fatalf("the delta's TUF target: %d, %d bytes", code, len(got))
	}
	if dt.Hashes["sha256"] != hex.EncodeToString(sum[:]) {
		t.Errorf("delta target hash %s, want %x", dt.Hashes["sha256"], sum)
	}
}

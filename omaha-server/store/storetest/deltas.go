package storetest

import (
	"context"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

func delta(source, file string) store.Delta {
	return store.Delta{AppID: "{" + strings.ToUpper(appID) + "}", Version: "4081.2.0", Board: "amd64-usr", SourceVersion: source,
		FileName: file, Size: 99, SHA256: strings.Repeat("d", 64), SHA1: strings.Repeat("e", 40), Hosted: true}
}

// testDeltas: a release's delta payloads, one per source version, are stored with every
// field, listed by source version, carried by the catalog, and bad or duplicate ones are
// refused without a trace.
func testDeltas(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	must(s.CreateRelease(ctx, release("4081.2.0", "arm64-usr")))(t)
	gen0 := must(s.Generation(ctx))(t)
	d1 := delta("4081.1.0", "delta-4081.1.0.sy")
	d1.TargetsMetadata = []byte(`{"signed":{}}`)
	got := must(s.CreateDelta(ctx, d1))(t)
	if got.ID == 0 || got.AppID != appID || got.CreatedAt.IsZero() || !got.HasTargetsMetadata {
		t.Fatalf("created %+v", got)
	}
	if gen := must(s.Generation(ctx))(t); gen <= gen0 {
		t.Errorf("generation %d after a delta, was %d", gen, gen0)
	}
	ext := delta("4080.0.0", "delta-4080.0.0.sy")
	ext.Hosted, ext.URL = false, "https://mirror.example.com/delta-4080.0.0.sy"
	must(s.CreateDelta(ctx, ext))(t)

	for _, tc := range []struct {
		name string
		d    store.Delta
		want error
	}{
		{"same source again", delta("4081.1.0", "other.sy"), store.ErrConflict},
		{"same file name", delta("4079.0.0", "delta-4081.1.0.sy"), store.ErrConflict},
		{"the full payload's name", delta("4079.0.0", "flatcar_production_update.gz"), store.ErrConflict},
		{"no such release", func() store.Delta { d := delta("4079.0.0", "x.sy"); d.Version = "9999.0.0"; return d }(), store.ErrNotFound},
		{"no source", delta("", "x.sy"), store.ErrInvalid},
		{"source is the release", delta("4081.2.0", "x.sy"), store.ErrInvalid},
		{"short hash", func() store.Delta { d := delta("4079.0.0", "x.sy"); d.SHA256 = "abc"; return d }(), store.ErrInvalid},
		{"no size", func() store.Delta { d := delta("4079.0.0", "x.sy"); d.Size = 0; return d }(), store.ErrInvalid},
		{"external without URL", func() store.Delta { d := delta("4079.0.0", "x.sy"); d.Hosted = false; return d }(), store.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateDelta(ctx, tc.d)
			wantErr(t, err, tc.want)
		})
	}

	list := must(s.ListDeltas(ctx, appID, "4081.2.0", "amd64-usr"))(t)
	if len(list) != 2 || list[0].SourceVersion != "4080.0.0" || list[1].SourceVersion != "4081.1.0" {
		t.Fatalf("deltas %+v, want 4080.0.0 and 4081.1.0", list)
	}
	want := got
	if l := list[1]; l.ID != want.ID || l.Version != want.Version || l.Board != want.Board || l.FileName != want.FileName ||
		l.Size != want.Size || l.SHA256 != want.SHA256 || l.SHA1 != want.SHA1 || !l.Hosted || l.URL != "" ||
		string(l.TargetsMetadata) != string(d1.TargetsMetadata) || !l.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("listed %+v, want %+v", l, want)
	}
	if l := list[0]; l.Hosted || l.URL != ext.URL || l.HasTargetsMetadata {
		t.Errorf("external delta listed as %+v", l)
	}
	if none := must(s.ListDeltas(ctx, appID, "4081.2.0", "arm64-usr"))(t); len(none) != 0 {
		t.Errorf("another board's release has deltas %+v", none)
	}
	_, err := s.ListDeltas(ctx, appID, "4081.2.0", "riscv-usr")
	wantErr(t, err, store.ErrNotFound)

	c := must(s.LoadCatalog(ctx))(t)
	if len(c.Deltas) != 2 {
		t.Fatalf("catalog has %d deltas, want 2", len(c.Deltas))
	}
	for _, d := range c.Deltas {
		if d.TargetsMetadata != nil || d.Version != "4081.2.0" || d.AppID != appID {
			t.Errorf("catalog delta %+v", d)
		}
	}
}

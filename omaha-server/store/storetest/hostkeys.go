package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// testHostKeys: a pin never replaces a key (of two racing pins exactly one wins), an
// enrollment does, a delete frees the machine id, listing pages in byte order, and bad
// input is refused without a write.
func testHostKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	const m = "0123456789abcdef0123456789abcdef"
	_, err := s.GetHostKey(ctx, m)
	wantErr(t, err, store.ErrNotFound)

	first := must(s.PinHostKey(ctx, store.HostKey{MachineID: m, PublicKey: "key-a"}))(t)
	if first.PublicKey != "key-a" || first.Enrolled || first.CreatedAt.IsZero() {
		t.Fatalf("first pin = %+v", first)
	}
	second := must(s.PinHostKey(ctx, store.HostKey{MachineID: m, PublicKey: "key-b"}))(t)
	if second.PublicKey != "key-a" {
		t.Fatalf("a second pin replaced the key: %+v", second)
	}
	if got := must(s.GetHostKey(ctx, m))(t); got != first {
		t.Fatalf("GetHostKey = %+v, want %+v", got, first)
	}

	enrolled := must(s.EnrollHostKey(ctx, store.HostKey{MachineID: m, PublicKey: "key-c"}))(t)
	if enrolled.PublicKey != "key-c" || !enrolled.Enrolled || !enrolled.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("enrollment = %+v, want key-c enrolled, created %v", enrolled, first.CreatedAt)
	}
	if got := must(s.PinHostKey(ctx, store.HostKey{MachineID: m, PublicKey: "key-d"}))(t); got.PublicKey != "key-c" || !got.Enrolled {
		t.Fatalf("a pin replaced an enrolled key: %+v", got)
	}

	for _, bad := range []store.HostKey{{MachineID: "", PublicKey: "k"}, {MachineID: "m", PublicKey: ""},
		{MachineID: string(make([]byte, 300)), PublicKey: "k"}} {
		_, err := s.PinHostKey(ctx, bad)
		wantErr(t, err, store.ErrInvalid)
		_, err = s.EnrollHostKey(ctx, bad)
		wantErr(t, err, store.ErrInvalid)
	}

	must(struct{}{}, s.DeleteHostKey(ctx, m))(t)
	wantErr(t, s.DeleteHostKey(ctx, m), store.ErrNotFound)
	if got := must(s.PinHostKey(ctx, store.HostKey{MachineID: m, PublicKey: "key-e"}))(t); got.PublicKey != "key-e" {
		t.Fatalf("pin after delete = %+v", got)
	}

	// Racing first contacts of one machine id: every caller sees the same winner.
	const racer = "fedcba9876543210fedcba9876543210"
	got := make([]string, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			k, err := s.PinHostKey(ctx, store.HostKey{MachineID: racer, PublicKey: fmt.Sprintf("racer-%d", i)})
			if err != nil {
				got[i] = "error: " + err.Error()
				return
			}
			got[i] = k.PublicKey
		})
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("racing pins disagree: %q", got)
		}
	}

	// Pages in byte order: "B" < "a" < "b".
	for _, id := range []string{"b", "a", "B"} {
		must(s.EnrollHostKey(ctx, store.HostKey{MachineID: id, PublicKey: "k-" + id}))(t)
	}
	var all []string
	after := ""
	for {
		page := must(s.ListHostKeys(ctx, after, 2))(t)
		if len(page) == 0 {
			break
		}
		for _, k := range page {
			all = append(all, k.MachineID)
		}
		after = page[len(page)-1].MachineID
	}
	want := []string{m, "B", "a", "b", racer}
	if fmt.Sprint(all) != fmt.Sprint(want) {
		t.Fatalf("listed %q, want %q", all, want)
	}
}

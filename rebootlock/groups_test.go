package rebootlock_test

import (
	"fmt"
	"testing"

	"github.com/switchyard-os/switchyard/rebootlock"
)

// TestGroupsFlood: requests naming more groups than Groups keeps must not make it refuse a
// real group; it forgets the least recently used ones instead, and stays bounded.
func TestGroupsFlood(t *testing.T) {
	// Groups does no I/O, so the client need not reach an etcd.
	cli, err := rebootlock.NewClient(rebootlock.EtcdConfig{Endpoints: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	g := rebootlock.NewGroups(cli, rebootlock.Options{})
	real, err := g.Semaphore("real")
	if err != nil {
		t.Fatal(err)
	}
	for i := range rebootlock.MaxGroups + 10 {
		if _, err := g.Semaphore(fmt.Sprintf("fake-%d", i)); err != nil {
			t.Fatalf("group %d of a flood: %v", i, err)
		}
		if i == rebootlock.MaxGroups/2 {
			// Used meanwhile: a recently used group is kept.
			if s, err := g.Semaphore("real"); err != nil || s != real {
				t.Fatalf("real group during the flood: %v (same semaphore: %v)", err, s == real)
			}
		}
	}
	if n := g.Len(); n != rebootlock.MaxGroups {
		t.Fatalf("%d groups in memory, want %d", n, rebootlock.MaxGroups)
	}
	if s, err := g.Semaphore("real"); err != nil || s != real {
		t.Fatalf("real group after the flood: %v (same semaphore: %v)", err, s == real)
	}
	if _, err := g.Semaphore("new-real"); err != nil {
		t.Fatalf("a new real group after the flood: %v", err)
	}
	if _, err := g.Semaphore("bad/name"); err == nil {
		t.Fatal("invalid group name accepted")
	}
}

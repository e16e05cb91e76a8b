package rebootlock_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchyard-os/switchyard/rebootlock"
)

// holderWatcher follows holders/ of a group revision by revision and records the largest
// number of holders it ever saw, and every id that held a slot.
type holderWatcher struct {
	mu      sync.Mutex
	max     int
	entered map[string]bool
	current map[string]bool
	changed chan struct{} // closed and replaced after every batch of events
}

// waitFor returns once ok (called with mu held) holds, or after timeout.
func (w *holderWatcher) waitFor(ok func() bool, timeout time.Duration) {
	expired := time.After(timeout)
	for {
		w.mu.Lock()
		done, changed := ok(), w.changed
		w.mu.Unlock()
		if done {
			return
		}
		select {
		case <-changed:
		case <-expired:
			return
		}
	}
}

func watchHolders(ctx context.Context, cli *clientv3.Client, prefix string, rev int64) (*holderWatcher, <-chan struct{}) {
	w := &holderWatcher{entered: map[string]bool{}, current: map[string]bool{}, changed: make(chan struct{})}
	done := make(chan struct{})
	current := w.current
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			wch := cli.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(), clientv3.WithRev(rev))
			for resp := range wch {
				w.mu.Lock()
				// Events of one revision (one transaction) are applied together.
				for i, ev := range resp.Events {
					id := strings.TrimPrefix(string(ev.Kv.Key), prefix)
					if ev.Type == clientv3.EventTypePut {
						current[id] = true
						w.entered[id] = true
					} else {
						delete(current, id)
					}
					if i == len(resp.Events)-1 || resp.Events[i+1].Kv.ModRevision != ev.Kv.ModRevision {
						w.max = max(w.max, len(current))
					}
					rev = ev.Kv.ModRevision + 1
				}
				close(w.changed)
				w.changed = make(chan struct{})
				w.mu.Unlock()
			}
			// The watch ended (leader loss or ctx): resume from the next unseen revision,
			// after a pause so that a cluster without a leader is not asked in a busy loop.
			pause(ctx, 50*time.Millisecond)
		}
	}()
	return w, done
}

// contend runs hosts simulated hosts against a group with maxSlots slots, each taking a
// slot (retrying on etcd errors, as the strategy does), holding it briefly, releasing it.
// midway runs once a third of the hosts got through.
func contend(t *testing.T, c *cluster, hosts, maxSlots int, midway func()) {
	ctx := ctxT(t, 3*time.Minute)
	admin := c.client(t, rebootlock.EtcdConfig{})
	adminSem := newSem(t, admin, "race", rebootlock.Options{})
	if _, err := adminSem.SetMax(ctx, maxSlots); err != nil {
		t.Fatal(err)
	}
	st, err := adminSem.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	w, watchDone := watchHolders(wctx, admin, "/test/groups/race/holders/", st.Revision+1)

	var through atomic.Int32
	var midOnce sync.Once
	var wg sync.WaitGroup
	errs := make(chan error, hosts)
	for i := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := c.client(t, rebootlock.EtcdConfig{})
			s := newSem(t, cli, "race", rebootlock.Options{OpTimeout: 3 * time.Second, Jitter: 30 * time.Millisecond})
			id := fmt.Sprintf("host-%02d", i)
			retry := func(what string, f func() error) error {
				for {
					err := f()
					if err == nil {
						return nil
					}
					if ctx.Err() != nil {
						return fmt.Errorf("%s %s: %w", id, what, err)
					}
					pause(ctx, 50*time.Millisecond) // retry backoff, as the strategy's

				}
			}
			if err := retry("lock", func() error { return s.Lock(ctx, rebootlock.Holder{ID: id}) }); err != nil {
				errs <- err
				return
			}
			// Hold the slot a moment, as a reboot does, so that holders overlap and the
			// bound is exercised (without it one holder at a time is typical). This shapes
			// the load; nothing waits on it.
			pause(ctx, 5*time.Millisecond)
			if err := retry("unlock", func() error { return s.Unlock(ctx, id) }); err != nil {
				errs <- err
				return
			}
			if through.Add(1) == int32(hosts/3) && midway != nil {
				midOnce.Do(midway)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Let the watcher catch up with the last revision, then stop it.
	waitStatus(t, admin, adminSem, func(st rebootlock.Status) bool { return len(st.Holders) == 0 })
	w.waitFor(func() bool { return len(w.entered) == hosts && len(w.current) == 0 }, 10*time.Second)
	stopWatch()
	<-watchDone
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.max > maxSlots {
		t.Errorf("the watcher saw %d holders at once, max is %d", w.max, maxSlots)
	}
	if w.max == 0 {
		t.Errorf("the watcher saw no holder at all")
	}
	if len(w.entered) != hosts || int(through.Load()) != hosts {
		t.Errorf("%d hosts got through (watcher saw %d), want %d", through.Load(), len(w.entered), hosts)
	}
	t.Logf("%d hosts, max %d: at most %d held at once", hosts, maxSlots, w.max)
}

func TestContentionSingleMember(t *testing.T) {
	c := startCluster(t, 1, nil)
	contend(t, c, 12, 3, nil)
}

func TestContentionThreeMembersLeaderKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("three-member cluster with 50 hosts: skipped in -short mode")
	}
	c := startCluster(t, 3, nil)
	contend(t, c, 50, 3, func() {
		i := c.leader(t)
		t.Logf("killing leader m%d mid-acquire", i)
		c.kill(i)
	})
}

// pause waits for d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

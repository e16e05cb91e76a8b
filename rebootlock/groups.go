package rebootlock

import (
	"container/list"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// MaxGroups bounds how many groups one Groups keeps in memory, so that requests naming
// ever new groups cannot grow it without limit. Beyond it the least recently used group is
// forgotten, never refused: a flood of invented names cannot keep a real group from being
// served.
const MaxGroups = 4096

// Groups hands out one Semaphore per group on a shared client, created on first use. A
// server acting for many groups (the FleetLock handler) uses it. Its semaphores have no
// liveness (Options.LivenessTTL is forced negative): such a server acts for hosts it
// cannot watch, and a semaphore without a session can be forgotten at any time. Forgetting
// one loses only what it remembers between requests — how long it has seen a holder stale
// for Options.AutoReclaimAfter — which delays an automatic reclaim, never hastens it.
type Groups struct {
	client *clientv3.Client
	opts   Options

	mu   sync.Mutex
	sems map[string]*list.Element // of *Semaphore
	lru  *list.List               // most recently used first
}

// NewGroups returns Groups whose semaphores use opts (without liveness).
func NewGroups(client *clientv3.Client, opts Options) *Groups {
	opts.LivenessTTL = -1
	return &Groups{client: client, opts: opts, sems: map[string]*list.Element{}, lru: list.New()}
}

// Semaphore returns the semaphore of group, or an error wrapping ErrInvalidGroup.
func (g *Groups) Semaphore(group string) (*Semaphore, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.sems[group]; ok {
		g.lru.MoveToFront(e)
		return e.Value.(*Semaphore), nil
	}
	s, err := New(g.client, group, g.opts)
	if err != nil {
		return nil, err
	}
	if g.lru.Len() >= MaxGroups {
		oldest := g.lru.Back()
		g.lru.Remove(oldest)
		delete(g.sems, oldest.Value.(*Semaphore).Group())
	}
	g.sems[group] = g.lru.PushFront(s)
	return s, nil
}

// Len returns how many groups are in memory (at most MaxGroups).
func (g *Groups) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lru.Len()
}

// Close releases the semaphores handed out. They hold no sessions, so this only forgets
// them.
func (g *Groups) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sems = map[string]*list.Element{}
	g.lru.Init()
	return nil
}

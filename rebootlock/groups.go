package rebootlock

import (
	"fmt"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// MaxGroups bounds how many groups one Groups serves, so that requests naming ever new
// groups cannot grow it without limit.
const MaxGroups = 4096

// Groups hands out one Semaphore per group on a shared client, created on first use. A
// server acting for many groups (the FleetLock handler) uses it.
type Groups struct {
	client *clientv3.Client
	opts   Options

	mu   sync.Mutex
	sems map[string]*Semaphore
}

// NewGroups returns Groups whose semaphores use opts.
func NewGroups(client *clientv3.Client, opts Options) *Groups {
	return &Groups{client: client, opts: opts, sems: map[string]*Semaphore{}}
}

// Semaphore returns the semaphore of group, or an error wrapping ErrInvalidGroup.
func (g *Groups) Semaphore(group string) (*Semaphore, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s, ok := g.sems[group]; ok {
		return s, nil
	}
	if len(g.sems) >= MaxGroups {
		return nil, fmt.Errorf("%w: %q: this server already serves %d groups", ErrInvalidGroup, group, MaxGroups)
	}
	s, err := New(g.client, group, g.opts)
	if err != nil {
		return nil, err
	}
	g.sems[group] = s
	return s, nil
}

// Close closes every semaphore handed out.
func (g *Groups) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var first error
	for _, s := range g.sems {
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

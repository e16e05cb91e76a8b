package postgres

import (
	"sync"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// DefaultRowCacheSize bounds the instance rows a replica remembers. An entry costs about
// 1 KiB of live heap (twice that in RSS with the garbage collector's headroom); a fleet
// larger than the cache gets a proportionally lower hit rate, never a wrong answer.
const DefaultRowCacheSize = 50_000

type rowKey struct{ app, machine string }

type cachedRow struct {
	in  store.Instance
	rev int64
}

// rowCache remembers the instance rows this replica last wrote, with their revision
// tokens, so a returning host's check-in skips the read. An entry is only a guess: the
// check-and-set write refuses it when another writer changed the row since, and the
// check-in reads the row again. When full, an arbitrary entry is evicted.
type rowCache struct {
	mu   sync.Mutex
	max  int
	rows map[rowKey]cachedRow
}

func newRowCache(max int) *rowCache {
	return &rowCache{max: max, rows: make(map[rowKey]cachedRow)}
}

func (c *rowCache) get(k rowKey) (store.Instance, int64, bool) {
	if c.max <= 0 {
		return store.Instance{}, 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.rows[k]
	return r.in, r.rev, ok
}

func (c *rowCache) put(k rowKey, in store.Instance, rev int64) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.rows[k]; !ok && len(c.rows) >= c.max {
		for old := range c.rows {
			delete(c.rows, old)
			break
		}
	}
	c.rows[k] = cachedRow{in: in, rev: rev}
}

func (c *rowCache) drop(k rowKey) {
	c.mu.Lock()
	delete(c.rows, k)
	c.mu.Unlock()
}

package catalog

import (
	"sort"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// Groups returns every group of the snapshot, sorted by application and name (for the
// server's metrics, read at scrape time: the Omaha check path does not use it).
func (s *Snapshot) Groups() []store.Group {
	out := make([]store.Group, 0, len(s.groups))
	for _, g := range s.groups {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].AppID != out[j].AppID {
			return out[i].AppID < out[j].AppID
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Current returns the latest snapshot without asking the store (nil before the first
// Get). It may be older than the TTL: a caller that needs it fresh calls Get first.
func (c *Cache) Current() *Snapshot {
	if e := c.cur.Load(); e != nil {
		return e.snap
	}
	return nil
}

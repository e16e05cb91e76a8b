package rebootlock

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Status is a group as read at one etcd revision.
type Status struct {
	Group string
	// Max is the number of slots; 1 when no config was ever written (MaxSet false).
	Max    int
	MaxSet bool
	// ConfigError describes an unreadable config value; Lock refuses to grant slots then.
	ConfigError string
	// Holders, oldest first (holders with unreadable values last).
	Holders  []HolderStatus
	Revision int64
}

// HolderStatus is one holder and what the lock knows about its host.
type HolderStatus struct {
	Holder
	// Alive: the holder's process keeps its liveness key.
	Alive bool
	// WithinDeadline: the reboot deadline granted at Lock time has not expired.
	WithinDeadline bool
	// Stale: neither alive nor within the deadline — a host that did not come back.
	Stale bool
	// Age is how long the slot has been held, by the reader's clock (0 if unknown).
	Age time.Duration
	// Malformed describes a holder value that is not a valid record; such a holder still
	// counts against max.
	Malformed string
}

// Full reports whether no new holder may enter.
func (s Status) Full() bool { return len(s.Holders) >= s.Max }

// Holding reports whether id holds a slot.
func (s Status) Holding(id string) bool {
	for _, h := range s.Holders {
		if h.ID == id {
			return true
		}
	}
	return false
}

// config is the JSON value of the config key.
type config struct {
	Max int `json:"max"`
}

// groupState is a Status plus the revisions the acquire transaction guards on.
type groupState struct {
	Status
	configModRev int64
	holderModRev map[string]int64
}

// parseGroup builds the state of a group from a prefix range read at revision rev.
func (s *Semaphore) parseGroup(resp *clientv3.GetResponse, now time.Time) groupState {
	st := groupState{
		Status:       Status{Group: s.group, Max: 1, Revision: resp.Header.Revision},
		holderModRev: map[string]int64{},
	}
	alive := map[string]bool{}
	deadline := map[string]bool{}
	holders := map[string]*HolderStatus{}
	for _, kv := range resp.Kvs {
		rest, ok := strings.CutPrefix(string(kv.Key), s.groupPrefix)
		if !ok {
			continue
		}
		kind, id, _ := strings.Cut(rest, "/")
		switch kind {
		case "config":
			if id != "" {
				continue
			}
			st.configModRev = kv.ModRevision
			var c config
			if err := json.Unmarshal(kv.Value, &c); err != nil {
				st.ConfigError = fmt.Sprintf("config value %q is not JSON: %v", truncate(kv.Value), err)
			} else if c.Max < 1 {
				st.ConfigError = fmt.Sprintf("config value %q: max %d is below 1", truncate(kv.Value), c.Max)
			} else {
				st.Max, st.MaxSet = c.Max, true
			}
		case "holders":
			h := &HolderStatus{}
			if err := json.Unmarshal(kv.Value, &h.Holder); err != nil {
				h.Holder = Holder{}
				h.Malformed = fmt.Sprintf("value %q is not a holder record: %v", truncate(kv.Value), err)
			} else if h.ID != id {
				h.Malformed = fmt.Sprintf("record names id %q under key %q", h.ID, id)
			}
			h.ID = id
			if !h.Since.IsZero() {
				h.Age = now.Sub(h.Since)
			}
			holders[id] = h
			st.holderModRev[id] = kv.ModRevision
		case "alive":
			alive[id] = true
		case "deadline":
			deadline[id] = true
		}
	}
	for id, h := range holders {
		h.Alive, h.WithinDeadline = alive[id], deadline[id]
		h.Stale = !h.Alive && !h.WithinDeadline
		st.Holders = append(st.Holders, *h)
	}
	sort.Slice(st.Holders, func(i, j int) bool {
		a, b := st.Holders[i], st.Holders[j]
		if (a.Malformed == "") != (b.Malformed == "") {
			return a.Malformed == ""
		}
		if !a.Since.Equal(b.Since) {
			return a.Since.Before(b.Since)
		}
		return a.ID < b.ID
	})
	return st
}

func truncate(b []byte) string {
	const n = 64
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

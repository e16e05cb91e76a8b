package rebootlock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// DefaultPrefix is the key prefix when Options.Prefix is empty.
const DefaultPrefix = "/switchyard/rebootlock"

// Defaults for Options fields left zero.
const (
	DefaultLivenessTTL    = 30 * time.Second
	DefaultRebootDeadline = 30 * time.Minute
	DefaultOpTimeout      = 10 * time.Second
	DefaultJitter         = 500 * time.Millisecond
	// resync bounds how long Lock trusts a watch without re-reading the group, should the
	// watch stall silently behind a partition.
	resync = time.Minute
)

// Options configure a Semaphore. The zero value is usable.
type Options struct {
	// Prefix of every key; DefaultPrefix when empty.
	Prefix string
	// Logger; slog.Default() when nil.
	Logger *slog.Logger
	// Now is the clock for holder timestamps and ages; time.Now when nil.
	Now func() time.Time
	// Metrics, when set, are updated at every read of the group.
	Metrics *Metrics
	// LivenessTTL is the TTL of the session lease behind alive/<id> keys. Negative: slots
	// taken through this Semaphore get no liveness key (the FleetLock server, which acts
	// for hosts it cannot watch).
	LivenessTTL time.Duration
	// RebootDeadline is how long after Lock a holder counts as rebooting even without
	// liveness; after it, a holder without liveness is stale.
	RebootDeadline time.Duration
	// AutoReclaimAfter, when positive, lets Lock free the slot of a holder it has seen
	// stale for that long. Zero: stale holders are only reported.
	AutoReclaimAfter time.Duration
	// OpTimeout bounds each etcd request (the client does not fail fast when etcd is
	// unreachable).
	OpTimeout time.Duration
	// Jitter is the upper bound of the random pause before a waiter re-reads the group.
	Jitter time.Duration
	// UnconfiguredHolderTTL, when positive, puts a holder that enters a group without a
	// config key (no set-max ever ran on it) on a lease of that length, never renewed:
	// etcd deletes the holder, freeing its slot, if it does not unlock in time. The
	// FleetLock server sets it, so that holders in groups invented by unauthenticated
	// requests do not stay in etcd for ever. Holders of configured groups are kept until
	// they unlock or are reclaimed, whatever this says.
	UnconfiguredHolderTTL time.Duration
	// Waiting, when set, is called each time Lock has found the group full and starts to
	// wait for a change (every key change after that read wakes it, so whatever happens
	// after the call is seen). Tests synchronise on it; it must not block.
	Waiting func()
}

// Semaphore is the reboot semaphore of one group. It is safe for concurrent use.
type Semaphore struct {
	client      *clientv3.Client
	group       string
	groupPrefix string // <prefix>/groups/<g>/
	opts        Options
	log         *slog.Logger
	now         func() time.Time

	mu        sync.Mutex
	session   *concurrency.Session
	staleSeen map[string]staleSighting
}

type staleSighting struct {
	modRev int64
	at     time.Time
}

// New returns the semaphore of group on client. It does no I/O.
func New(client *clientv3.Client, group string, opts Options) (*Semaphore, error) {
	if client == nil {
		return nil, errors.New("rebootlock: nil etcd client")
	}
	if err := ValidateGroup(group); err != nil {
		return nil, err
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.LivenessTTL == 0 {
		opts.LivenessTTL = DefaultLivenessTTL
	}
	if opts.RebootDeadline <= 0 {
		opts.RebootDeadline = DefaultRebootDeadline
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = DefaultOpTimeout
	}
	if opts.Jitter <= 0 {
		opts.Jitter = DefaultJitter
	}
	s := &Semaphore{
		client:      client,
		group:       group,
		groupPrefix: opts.Prefix + "/groups/" + group + "/",
		opts:        opts,
		log:         opts.Logger,
		now:         opts.Now,
		staleSeen:   map[string]staleSighting{},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.log = s.log.With("group", group)
	return s, nil
}

// Group returns the group's name.
func (s *Semaphore) Group() string { return s.group }

func (s *Semaphore) configKey() string          { return s.groupPrefix + "config" }
func (s *Semaphore) holdersPrefix() string      { return s.groupPrefix + "holders/" }
func (s *Semaphore) holderKey(id string) string { return s.groupPrefix + "holders/" + id }
func (s *Semaphore) aliveKey(id string) string  { return s.groupPrefix + "alive/" + id }
func (s *Semaphore) deadlineKey(id string) string {
	return s.groupPrefix + "deadline/" + id
}

// op runs f with the per-request timeout.
func (s *Semaphore) op(ctx context.Context, what string, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
	defer cancel()
	if err := f(ctx); err != nil {
		return fmt.Errorf("rebootlock: %s (group %q): %w", what, s.group, err)
	}
	return nil
}

// read reads the whole group at one revision.
func (s *Semaphore) read(ctx context.Context) (groupState, error) {
	var resp *clientv3.GetResponse
	err := s.op(ctx, "reading group", func(ctx context.Context) (err error) {
		resp, err = s.client.Get(ctx, s.groupPrefix, clientv3.WithPrefix())
		return err
	})
	if err != nil {
		return groupState{}, err
	}
	st := s.parseGroup(resp, s.now())
	s.opts.Metrics.observe(st.Status)
	return st, nil
}

// Status reads the group.
func (s *Semaphore) Status(ctx context.Context) (Status, error) {
	st, err := s.read(ctx)
	return st.Status, err
}

// Lock takes a slot for h.ID, waiting (watch plus jitter) while the group is full. It
// returns nil at once if h.ID already holds a slot. It returns an error when etcd fails;
// callers retry (see the strategy package), which is safe because Lock is idempotent.
func (s *Semaphore) Lock(ctx context.Context, h Holder) error {
	return s.acquire(ctx, h, true)
}

// TryLock is Lock without waiting: it returns an error wrapping ErrFull when the group is
// full.
func (s *Semaphore) TryLock(ctx context.Context, h Holder) error {
	return s.acquire(ctx, h, false)
}

func (s *Semaphore) acquire(ctx context.Context, h Holder, wait bool) error {
	if err := ValidateID(h.ID); err != nil {
		return err
	}
	for {
		st, err := s.read(ctx)
		if err != nil {
			return err
		}
		if st.Holding(h.ID) {
			return nil
		}
		if st.ConfigError != "" {
			return fmt.Errorf("%w (group %q): %s; fix it with set-max", ErrBadConfig, s.group, st.ConfigError)
		}
		var wake time.Duration
		if st.Full() && s.opts.AutoReclaimAfter > 0 {
			var freed bool
			freed, wake, err = s.autoReclaim(ctx, st)
			if err != nil {
				return err
			}
			if freed {
				continue
			}
		}
		if !st.Full() {
			ok, err := s.tryEnter(ctx, st, h)
			if err != nil {
				return err
			}
			if ok {
				s.log.Info("reboot slot taken", "id", h.ID, "holders", len(st.Holders)+1, "max", st.Max)
				return nil
			}
			// Lost a race: another holder entered or the config changed. Re-read.
			if err := s.pause(ctx, s.opts.Jitter/4); err != nil {
				return err
			}
			continue
		}
		if !wait {
			return fmt.Errorf("%w: %q has %d of %d slots held", ErrFull, s.group, len(st.Holders), st.Max)
		}
		s.log.Debug("group full, waiting", "id", h.ID, "holders", len(st.Holders), "max", st.Max)
		if s.opts.Waiting != nil {
			s.opts.Waiting()
		}
		if err := s.waitChange(ctx, st.Revision, wake); err != nil {
			return err
		}
		if err := s.pause(ctx, s.opts.Jitter); err != nil {
			return err
		}
	}
}

// tryEnter is the guarded acquire transaction. It reports false when the guard failed.
func (s *Semaphore) tryEnter(ctx context.Context, st groupState, h Holder) (bool, error) {
	h.Since = s.now().UTC()
	if h.Via == "" {
		h.Via = "etcd"
	}
	val, err := json.Marshal(h)
	if err != nil {
		return false, fmt.Errorf("rebootlock: encoding holder: %w", err)
	}
	var deadline clientv3.LeaseID
	err = s.op(ctx, "granting reboot deadline", func(ctx context.Context) error {
		resp, err := s.client.Grant(ctx, int64((s.opts.RebootDeadline+time.Second-1)/time.Second))
		if err == nil {
			deadline = resp.ID
		}
		return err
	})
	if err != nil {
		return false, err
	}
	holderOpts := []clientv3.OpOption{}
	var expiry clientv3.LeaseID
	if !st.MaxSet && s.opts.UnconfiguredHolderTTL > 0 {
		err = s.op(ctx, "granting holder expiry", func(ctx context.Context) error {
			resp, err := s.client.Grant(ctx, int64((s.opts.UnconfiguredHolderTTL+time.Second-1)/time.Second))
			if err == nil {
				expiry = resp.ID
			}
			return err
		})
		if err != nil {
			s.revoke(ctx, deadline)
			return false, err
		}
		holderOpts = append(holderOpts, clientv3.WithLease(expiry))
	}
	// unused revokes the leases granted for a transaction that did not commit.
	unused := func() {
		s.revoke(ctx, deadline)
		if expiry != 0 {
			s.revoke(ctx, expiry)
		}
	}
	puts := []clientv3.Op{
		clientv3.OpPut(s.holderKey(h.ID), string(val), holderOpts...),
		clientv3.OpPut(s.deadlineKey(h.ID), "", clientv3.WithLease(deadline)),
	}
	if s.opts.LivenessTTL > 0 {
		sess, err := s.liveSession(ctx)
		if err != nil {
			unused()
			return false, err
		}
		puts = append(puts, clientv3.OpPut(s.aliveKey(h.ID), "", clientv3.WithLease(sess.Lease())))
	}
	var resp *clientv3.TxnResponse
	err = s.op(ctx, "acquire transaction", func(ctx context.Context) (err error) {
		resp, err = s.client.Txn(ctx).If(
			// Nothing under holders/ created or changed since the read (deletions only free slots).
			clientv3.Compare(clientv3.ModRevision(s.holdersPrefix()), "<", st.Revision+1).WithPrefix(),
			clientv3.Compare(clientv3.ModRevision(s.configKey()), "=", st.configModRev),
		).Then(puts...).Commit()
		return err
	})
	if err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			s.dropSession()
		}
		unused()
		return false, err
	}
	if !resp.Succeeded {
		unused()
	}
	return resp.Succeeded, nil
}

func (s *Semaphore) revoke(ctx context.Context, id clientv3.LeaseID) {
	_ = s.op(ctx, "revoking unused lease", func(ctx context.Context) error {
		_, err := s.client.Revoke(ctx, id)
		return err
	})
}

// waitChange blocks until a key of the group changes after rev, max(wake, resync) passes
// (wake 0 means no wake-up), or ctx ends.
func (s *Semaphore) waitChange(ctx context.Context, rev int64, wake time.Duration) error {
	if wake <= 0 || wake > resync {
		wake = resync
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := s.client.Watch(wctx, s.groupPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	timer := time.NewTimer(wake)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("rebootlock: waiting for a slot in %q: %w", s.group, ctx.Err())
	case <-wch:
		// An event, a watch error or a closed watch: all mean "read again".
	case <-timer.C:
	}
	return nil
}

// pause sleeps a random time below max.
func (s *Semaphore) pause(ctx context.Context, max time.Duration) error {
	if max <= 0 {
		return nil
	}
	t := time.NewTimer(rand.N(max))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("rebootlock: waiting for a slot in %q: %w", s.group, ctx.Err())
	case <-t.C:
		return nil
	}
}

// Unlock releases id's slot. Unlocking an id that holds none succeeds.
func (s *Semaphore) Unlock(ctx context.Context, id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	err := s.op(ctx, "unlock", func(ctx context.Context) error {
		_, err := s.client.Txn(ctx).Then(
			clientv3.OpDelete(s.holderKey(id)),
			clientv3.OpDelete(s.aliveKey(id)),
			clientv3.OpDelete(s.deadlineKey(id)),
		).Commit()
		return err
	})
	if err == nil {
		s.log.Info("reboot slot released", "id", id)
	}
	return err
}

// Reclaim frees the slot of a stale holder: one with neither liveness nor an unexpired
// reboot deadline. It refuses (ErrAlive) a holder that is alive or still within its
// deadline, and returns ErrNotHolder for an id that holds nothing. An operator who knows
// better uses Unlock.
func (s *Semaphore) Reclaim(ctx context.Context, id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	st, err := s.read(ctx)
	if err != nil {
		return err
	}
	return s.reclaim(ctx, st, id)
}

func (s *Semaphore) reclaim(ctx context.Context, st groupState, id string) error {
	var hs *HolderStatus
	for i := range st.Holders {
		if st.Holders[i].ID == id {
			hs = &st.Holders[i]
		}
	}
	if hs == nil {
		return fmt.Errorf("%w: %q in group %q", ErrNotHolder, id, s.group)
	}
	if !hs.Stale {
		return fmt.Errorf("%w: %q (alive %v, within reboot deadline %v); use unlock to force", ErrAlive, id, hs.Alive, hs.WithinDeadline)
	}
	var resp *clientv3.TxnResponse
	err := s.op(ctx, "reclaim", func(ctx context.Context) (err error) {
		resp, err = s.client.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(s.holderKey(id)), "=", st.holderModRev[id]),
			clientv3.Compare(clientv3.Version(s.aliveKey(id)), "=", 0),
			clientv3.Compare(clientv3.Version(s.deadlineKey(id)), "=", 0),
		).Then(clientv3.OpDelete(s.holderKey(id))).Commit()
		return err
	})
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return fmt.Errorf("rebootlock: reclaim %q: the holder changed meanwhile; read the status again", id)
	}
	s.opts.Metrics.reclaim(s.group)
	s.log.Warn("reboot slot of stale holder reclaimed", "id", id, "hostname", hs.Hostname, "since", hs.Since)
	return nil
}

// autoReclaim frees slots of holders this Semaphore has seen stale for AutoReclaimAfter.
// It reports whether it freed one, and otherwise how long until the next one is due.
func (s *Semaphore) autoReclaim(ctx context.Context, st groupState) (bool, time.Duration, error) {
	now := s.now()
	var due []string
	var next time.Duration
	s.mu.Lock()
	seen := map[string]bool{}
	for _, h := range st.Holders {
		if !h.Stale {
			continue
		}
		seen[h.ID] = true
		sight, ok := s.staleSeen[h.ID]
		if !ok || sight.modRev != st.holderModRev[h.ID] {
			sight = staleSighting{modRev: st.holderModRev[h.ID], at: now}
			s.staleSeen[h.ID] = sight
			s.log.Warn("stale reboot slot holder", "id", h.ID, "hostname", h.Hostname, "since", h.Since)
		}
		left := s.opts.AutoReclaimAfter - now.Sub(sight.at)
		if left <= 0 {
			due = append(due, h.ID)
		} else if next == 0 || left < next {
			next = left
		}
	}
	for id := range s.staleSeen {
		if !seen[id] {
			delete(s.staleSeen, id)
		}
	}
	s.mu.Unlock()
	freed := false
	for _, id := range due {
		err := s.reclaim(ctx, st, id)
		switch {
		case err == nil:
			freed = true
		case errors.Is(err, ErrAlive), errors.Is(err, ErrNotHolder):
		default:
			s.log.Warn("automatic reclaim failed", "id", id, "err", err)
		}
	}
	return freed, next, nil
}

// SetMax sets the group's number of slots, at once, and returns the previous value (1 if
// none was set). Lowering it keeps existing holders.
func (s *Semaphore) SetMax(ctx context.Context, max int) (int, error) {
	if max < 1 {
		return 0, fmt.Errorf("%w: %d (at least 1; to stop reboots set the hosts' strategy to off)", ErrInvalidMax, max)
	}
	val, _ := json.Marshal(config{Max: max})
	var prev *clientv3.PutResponse
	err := s.op(ctx, "set max", func(ctx context.Context) (err error) {
		prev, err = s.client.Put(ctx, s.configKey(), string(val), clientv3.WithPrevKV())
		return err
	})
	if err != nil {
		return 0, err
	}
	old := 1
	if prev.PrevKv != nil {
		var c config
		if json.Unmarshal(prev.PrevKv.Value, &c) == nil && c.Max >= 1 {
			old = c.Max
		}
	}
	s.log.Info("reboot slots changed", "old", old, "max", max)
	return old, nil
}

package rebootlock

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// liveSession returns the session whose lease backs this process's alive/<id> keys,
// granting a new one when there is none or the last one was lost.
func (s *Semaphore) liveSession(ctx context.Context) (*concurrency.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session != nil {
		select {
		case <-s.session.Done():
			s.session = nil
		default:
			return s.session, nil
		}
	}
	ttl := int((s.opts.LivenessTTL + time.Second - 1) / time.Second)
	var lease clientv3.LeaseID
	err := s.op(ctx, "granting liveness lease", func(ctx context.Context) error {
		resp, err := s.client.Grant(ctx, int64(ttl))
		if err == nil {
			lease = resp.ID
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	// The keep-alive runs on the client's own context, until Close or the client closes.
	sess, err := concurrency.NewSession(s.client, concurrency.WithTTL(ttl), concurrency.WithLease(lease),
		concurrency.WithContext(s.client.Ctx()))
	if err != nil {
		return nil, fmt.Errorf("rebootlock: liveness session: %w", err)
	}
	s.session = sess
	return sess, nil
}

func (s *Semaphore) dropSession() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session != nil {
		s.session.Orphan()
		s.session = nil
	}
}

// KeepAlive shows id as alive until ctx ends: it binds alive/<id> to this process's
// liveness lease and re-binds it whenever the lease is lost (an etcd outage longer than
// LivenessTTL). The daemon runs it after a reboot, while it checks health before Unlock.
// It returns ErrNotHolder when id holds no slot (then there is nothing to keep alive), and
// nil when ctx ends. etcd errors are retried with backoff.
func (s *Semaphore) KeepAlive(ctx context.Context, id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	if s.opts.LivenessTTL < 0 {
		return fmt.Errorf("rebootlock: keep-alive for %q: liveness is disabled on this semaphore", id)
	}
	backoff := time.Second
	for {
		sess, err := s.bindAlive(ctx, id)
		if errors.Is(err, ErrNotHolder) {
			return fmt.Errorf("%w: %q in group %q", ErrNotHolder, id, s.group)
		}
		var done <-chan struct{}
		if err != nil {
			s.log.Warn("liveness key not renewed; retrying", "id", id, "err", err, "in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			backoff = min(backoff*2, time.Minute)
			continue
		}
		backoff = time.Second
		done = sess.Done()
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			s.log.Warn("liveness lease lost; renewing", "id", id)
		}
	}
}

// bindAlive puts alive/<id> on the session lease if id is a holder.
func (s *Semaphore) bindAlive(ctx context.Context, id string) (*concurrency.Session, error) {
	sess, err := s.liveSession(ctx)
	if err != nil {
		return nil, err
	}
	var resp *clientv3.TxnResponse
	err = s.op(ctx, "binding liveness key", func(ctx context.Context) (err error) {
		resp, err = s.client.Txn(ctx).If(
			clientv3.Compare(clientv3.CreateRevision(s.holderKey(id)), ">", 0),
		).Then(clientv3.OpPut(s.aliveKey(id), "", clientv3.WithLease(sess.Lease()))).Commit()
		return err
	})
	if err != nil {
		s.dropSession()
		return nil, err
	}
	if !resp.Succeeded {
		return nil, ErrNotHolder
	}
	return sess, nil
}

// Close revokes this process's liveness lease, so the alive keys it kept disappear at
// once (a clean shutdown before a reboot). It does not release any slot.
func (s *Semaphore) Close() error {
	s.mu.Lock()
	sess := s.session
	s.session = nil
	s.mu.Unlock()
	if sess == nil {
		return nil
	}
	if err := sess.Close(); err != nil {
		return fmt.Errorf("rebootlock: closing liveness session: %w", err)
	}
	return nil
}

package server

import (
	"context"
	"fmt"

	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/webhook"
)

// The activity log's consumers in the server. The store writes each entry in the change's
// transaction and then hands it to the observer set here, on the goroutine that made the
// change (an admin request, or the check-in that tripped an automatic halt). The observer
// writes one structured log line with the entry's fields and queues the entry for the
// webhooks; both return at once (package webhook never blocks), so neither an admin
// write nor a check-in waits for a receiver.

// watchActivity starts the webhook workers (with nc) and observes the store's entries.
func (s *Server) watchActivity(ctx context.Context, nc *webhook.Config) error {
	if nc != nil {
		c := *nc
		c.Logger, c.Registerer = s.log, s.registry
		n, err := webhook.New(ctx, c)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		s.notifier = n
	}
	s.store.ObserveActivity(s.activity)
	return nil
}

// stopActivity undoes watchActivity: no entry reaches a stopped notifier.
func (s *Server) stopActivity() {
	s.store.ObserveActivity(nil)
	if s.notifier != nil {
		s.notifier.Close()
	}
}

// activity logs a committed entry and queues it for the webhooks.
func (s *Server) activity(a store.Activity) {
	s.log.Info("activity", "id", a.ID, "at", a.At, "actor", a.Actor, "actor_token_id", a.ActorTokenID, "action", string(a.Action),
		"app", a.AppID, "subject", a.Subject, "before", string(a.Before), "after", string(a.After), "reason", a.Reason)
	if s.notifier != nil {
		s.notifier.Notify(a)
	}
}

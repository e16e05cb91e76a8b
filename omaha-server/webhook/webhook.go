// Package webhook tells operators' HTTP receivers (chat bridges, incident tools) about the
// rollout events they act on: an automatic halt, a resume or a pause, a promotion, a
// publish. omaha-server's activity log (package store) is the source; the server hands
// each entry to Notify after the entry's transaction committed.
//
// Parties: the server (Notify, on the goroutine that made the change: an admin request,
// or the check-in that tripped a halt), one worker goroutine per receiver URL, and the
// receivers.
//
// Invariants:
//
//   - Notify never blocks and never does I/O: it marshals the message and appends it to
//     each receiver's queue. A check-in or an admin write is never slowed by a receiver.
//
//   - Each queue is bounded (QueueSize): when full, the oldest waiting message is dropped
//     and counted in switchyard_omaha_server_notify_dropped_total{reason="queue_full"}.
//
//   - A message is tried at most MaxAttempts times, waiting Backoff, 2·Backoff, … (at most
//     MaxBackoff) between attempts; every failed attempt (a transport error or a status
//     other than 2xx) counts in …_notify_failures_total, and a message given up counts in
//     …_notify_dropped_total{reason="attempts"}. Messages to one receiver go in order; a
//     slow receiver delays no other.
//
//   - The workers start with New and end in Close, which cancels a request in flight and
//     waits for them. Messages still queued then are not sent (they stay in the activity
//     log, GET /api/v1/activity).
//
// Wire format: POST, Content-Type application/json, the body one JSON object: "type"
// (halt, resume, pause, promote, publish) and the activity entry's fields (id, at, actor,
// actor_token_id, action, app, subject, before, after, reason). Headers:
// X-Switchyard-Event (the type), X-Switchyard-Delivery (the entry's id, the same on every
// retry, for deduplication), and with a secret X-Switchyard-Signature: sha256=<hex
// HMAC-SHA256 of the body under the secret>, which a receiver recomputes and compares in
// constant time.
//
// Only package server (and its command) imports it.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// Defaults of Config.
const (
	DefaultQueueSize   = 256
	DefaultMaxAttempts = 6
	DefaultBackoff     = time.Second
	DefaultMaxBackoff  = time.Minute
	DefaultTimeout     = 10 * time.Second
)

// maxResponseBytes bounds what is read of a receiver's answer (it is discarded; reading
// it lets the connection be reused).
const maxResponseBytes = 64 << 10

// Message types.
const (
	TypeHalt    = "halt"
	TypeResume  = "resume"
	TypePause   = "pause"
	TypePromote = "promote"
	TypePublish = "publish"
)

// TypeOf returns the message type of an activity entry's action, false for actions no
// receiver is told about (group edits, tokens, host keys).
func TypeOf(a store.Action) (string, bool) {
	switch a {
	case store.ActionGroupHalt:
		return TypeHalt, true
	case store.ActionGroupResume:
		return TypeResume, true
	case store.ActionGroupPause:
		return TypePause, true
	case store.ActionChannelPromote, store.ActionChannelSet:
		return TypePromote, true
	case store.ActionReleaseCreate, store.ActionTUFRootPublish:
		return TypePublish, true
	}
	return "", false
}

// Message is the JSON body of a delivery.
type Message struct {
	Type string `json:"type"`
	store.Activity
}

// Doer sends HTTP requests (*http.Client).
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Config configures a Notifier.
type Config struct {
	// URLs are the receivers (http or https). Required.
	URLs []string
	// Secret, when set, signs each body (X-Switchyard-Signature).
	Secret []byte
	// Client sends the requests (a client with Timeout per request when nil).
	Client Doer
	Logger *slog.Logger
	// Registerer receives the metrics (none when nil).
	Registerer prometheus.Registerer
	// QueueSize bounds each receiver's queue (DefaultQueueSize when 0).
	QueueSize int
	// MaxAttempts bounds the tries of one message (DefaultMaxAttempts when 0).
	MaxAttempts int
	// Backoff is the wait after the first failed attempt, doubled after each further one
	// up to MaxBackoff (DefaultBackoff, DefaultMaxBackoff when 0).
	Backoff, MaxBackoff time.Duration
	// Timeout bounds one attempt (DefaultTimeout when 0).
	Timeout time.Duration
}

// Notifier queues and delivers messages; see the package comment.
type Notifier struct {
	cfg     Config
	targets []*target
	log     *slog.Logger

	dropped  *prometheus.CounterVec
	failures prometheus.Counter
	sent     prometheus.Counter

	cancel context.CancelFunc
	done   sync.WaitGroup
}

// delivery is one queued message.
type delivery struct {
	typ  string
	id   int64
	body []byte
}

// target is one receiver with its queue.
type target struct {
	url   string
	mu    sync.Mutex
	queue []delivery
	wake  chan struct{} // capacity 1: something was queued
}

// New checks cfg and starts one worker per receiver; Close stops them. ctx bounds
// nothing but carries values for the workers' requests.
func New(ctx context.Context, cfg Config) (*Notifier, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("webhook: no receiver URL")
	}
	for _, u := range cfg.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("webhook: receiver %q: want an http or https URL", redact(u))
		}
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{
		cfg: cfg,
		log: cfg.Logger,
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_omaha_server_notify_dropped_total",
			Help: "Webhook messages dropped: queue_full (the oldest waiting, for a newer one) or attempts (every try failed).",
		}, []string{"reason"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_omaha_server_notify_failures_total",
			Help: "Failed webhook delivery attempts (transport errors and non-2xx answers).",
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_omaha_server_notify_sent_total",
			Help: "Webhook messages a receiver accepted.",
		}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{n.dropped, n.failures, n.sent} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("webhook: registering metrics: %w", err)
			}
		}
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel = cancel
	for _, u := range cfg.URLs {
		t := &target{url: u, wake: make(chan struct{}, 1)}
		n.targets = append(n.targets, t)
		n.done.Add(1)
		go func() {
			defer n.done.Done()
			n.work(wctx, t)
		}()
	}
	return n, nil
}

// Close stops the workers (a request in flight is cancelled) and waits for them.
func (n *Notifier) Close() {
	n.cancel()
	n.done.Wait()
}

// Notify queues a for every receiver when its action is one they are told about. It
// never blocks.
func (n *Notifier) Notify(a store.Activity) {
	typ, ok := TypeOf(a.Action)
	if !ok {
		return
	}
	body, err := json.Marshal(Message{Type: typ, Activity: a})
	if err != nil {
		n.log.Error("webhook: encoding a message", "id", a.ID, "err", err)
		return
	}
	d := delivery{typ: typ, id: a.ID, body: body}
	for _, t := range n.targets {
		t.mu.Lock()
		if len(t.queue) >= n.cfg.QueueSize {
			t.queue = t.queue[1:]
			n.dropped.WithLabelValues("queue_full").Inc()
		}
		t.queue = append(t.queue, d)
		t.mu.Unlock()
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// next takes the oldest queued delivery.
func (t *target) next() (delivery, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.queue) == 0 {
		return delivery{}, false
	}
	d := t.queue[0]
	t.queue = t.queue[1:]
	return d, true
}

// work delivers t's queue until ctx ends.
func (n *Notifier) work(ctx context.Context, t *target) {
	for {
		d, ok := t.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-t.wake:
				continue
			}
		}
		if !n.deliver(ctx, t.url, d) {
			return
		}
	}
}

// deliver tries d up to MaxAttempts times; false when ctx ended first.
func (n *Notifier) deliver(ctx context.Context, u string, d delivery) bool {
	wait := n.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err := n.post(ctx, u, d)
		if err == nil {
			n.sent.Inc()
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		n.failures.Inc()
		if attempt >= n.cfg.MaxAttempts {
			n.dropped.WithLabelValues("attempts").Inc()
			n.log.Error("webhook: giving up", "url", redact(u), "type", d.typ, "id", d.id, "attempts", attempt, "err", err)
			return true
		}
		n.log.Warn("webhook: delivery failed; retrying", "url", redact(u), "type", d.typ, "id", d.id, "attempt", attempt, "in", wait, "err", err)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return false
		case <-timer.C:
		}
		wait = min(2*wait, n.cfg.MaxBackoff)
	}
}

// post sends one attempt.
func (n *Notifier) post(ctx context.Context, u string, d delivery) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(d.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "switchyard-omaha-server")
	req.Header.Set("X-Switchyard-Event", d.typ)
	req.Header.Set("X-Switchyard-Delivery", strconv.FormatInt(d.id, 10))
	if len(n.cfg.Secret) > 0 {
		req.Header.Set("X-Switchyard-Signature", Sign(n.cfg.Secret, d.body))
	}
	resp, err := n.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", stripURL(err))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook: the receiver answered %s", resp.Status)
	}
	return nil
}

// Sign returns the X-Switchyard-Signature value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// redact drops a URL's user information and query (where receivers often carry a
// token) for logs and errors.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	p.User, p.RawQuery, p.Fragment = nil, "", ""
	return p.String()
}

// stripURL returns err without the request URL a *url.Error carries.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, redact(ue.URL), ue.Err)
	}
	return err
}

package webhook_test

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/webhook"
	"go.uber.org/goleak"
)

// received is one request a test receiver saw.
type received struct {
	header http.Header
	body   []byte
	msg    webhook.Message
}

// receiver is an httptest server that passes each request to the test on got and answers
// what answer returns for it (answer may block until the request's context ends).
func receiver(t *testing.T, answer func(r *http.Request, rc received) int) (*httptest.Server, <-chan received) {
	t.Helper()
	got := make(chan received, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc := received{header: r.Header.Clone(), body: body}
		if err := json.Unmarshal(body, &rc.msg); err != nil {
			t.Errorf("body %q: %v", body, err)
		}
		got <- rc
		w.WriteHeader(answer(r, rc))
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func next(t *testing.T, got <-chan received) received {
	t.Helper()
	select {
	case r := <-got:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10s")
		return received{}
	}
}

func entry(id int64, action store.Action) store.Activity {
	return store.Activity{ID: id, At: time.UnixMilli(1_700_000_000_000).UTC(), Actor: store.SystemActor, Action: action,
		AppID: store.FlatcarAppID, Subject: "group/stable", Reason: "3 failures in the last 5 attempts at 4081.2.0"}
}

func newNotifier(t *testing.T, cfg webhook.Config) (*webhook.Notifier, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	if cfg.Backoff == 0 {
		cfg.Backoff = time.Millisecond
	}
	n, err := webhook.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n, reg
}

// TestDelivery: a halt reaches the receiver as the entry's JSON with its type, the
// delivery headers and a signature the receiver can check; an action receivers are not
// told about (a group edit) sends nothing.
func TestDelivery(t *testing.T) {
	secret := []byte("shared secret")
	srv, got := receiver(t, func(*http.Request, received) int { return http.StatusNoContent })
	n, reg := newNotifier(t, webhook.Config{URLs: []string{srv.URL + "/hook"}, Secret: secret})
	n.Notify(entry(1, store.ActionGroupUpdate))
	n.Notify(entry(2, store.ActionGroupHalt))
	r := next(t, got)
	if r.msg.Type != webhook.TypeHalt || r.msg.ID != 2 || r.msg.Reason == "" || r.msg.Subject != "group/stable" || r.msg.Actor != "system" {
		t.Fatalf("message %+v (the group edit must not be sent)", r.msg)
	}
	for _, field := range []string{`"type":"halt"`, `"action":"group.halt"`, `"app":"` + store.FlatcarAppID + `"`, `"reason":`} {
		if !strings.Contains(string(r.body), field) {
			t.Errorf("body %s lacks %s", r.body, field)
		}
	}
	if r.header.Get("Content-Type") != "application/json" || r.header.Get("X-Switchyard-Event") != "halt" || r.header.Get("X-Switchyard-Delivery") != "2" {
		t.Errorf("headers %v", r.header)
	}
	if sig := r.header.Get("X-Switchyard-Signature"); !hmac.Equal([]byte(sig), []byte(webhook.Sign(secret, r.body))) ||
		sig == webhook.Sign([]byte("other"), r.body) {
		t.Errorf("signature %q does not verify", sig)
	}
	for _, tt := range []struct {
		action store.Action
		typ    string
	}{
		{store.ActionGroupResume, webhook.TypeResume},
		{store.ActionGroupPause, webhook.TypePause},
		{store.ActionChannelPromote, webhook.TypePromote},
		{store.ActionChannelSet, webhook.TypePromote},
		{store.ActionReleaseCreate, webhook.TypePublish},
	} {
		n.Notify(entry(3, tt.action))
		if r := next(t, got); r.msg.Type != tt.typ || r.msg.Action != tt.action {
			t.Errorf("%s sent as %+v, want type %s", tt.action, r.msg, tt.typ)
		}
	}
	if v := value(t, reg, "switchyard_omaha_server_notify_sent_total"); v < 1 {
		t.Errorf("sent_total %v", v)
	}
}

// value reads a counter of reg by name (and label pairs); 0 when it has no such series.
func value(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestRetryAfter500: a 500 is retried with the same delivery id and counted as a failure;
// the retry's 200 delivers it.
func TestRetryAfter500(t *testing.T) {
	first := true
	srv, got := receiver(t, func(*http.Request, received) int {
		if first {
			first = false
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	n, reg := newNotifier(t, webhook.Config{URLs: []string{srv.URL}})
	n.Notify(entry(9, store.ActionGroupHalt))
	a, b := next(t, got), next(t, got)
	if a.msg.ID != 9 || b.msg.ID != 9 || a.header.Get("X-Switchyard-Delivery") != b.header.Get("X-Switchyard-Delivery") {
		t.Fatalf("attempts %+v then %+v", a.msg, b.msg)
	}
	// A second message proves the first one is done with.
	n.Notify(entry(10, store.ActionGroupResume))
	if r := next(t, got); r.msg.ID != 10 {
		t.Fatalf("then %+v", r.msg)
	}
	if v := value(t, reg, "switchyard_omaha_server_notify_failures_total"); v != 1 {
		t.Errorf("failures_total = %v, want 1", v)
	}
}

// TestGiveUpAfterMaxAttempts: a receiver that always fails gets MaxAttempts tries, then
// the message is dropped and counted, and the next message goes out.
func TestGiveUpAfterMaxAttempts(t *testing.T) {
	srv, got := receiver(t, func(_ *http.Request, rc received) int {
		if rc.msg.ID == 1 {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	n, reg := newNotifier(t, webhook.Config{URLs: []string{srv.URL}, MaxAttempts: 3})
	n.Notify(entry(1, store.ActionGroupHalt))
	n.Notify(entry(2, store.ActionGroupHalt))
	var ids []int64
	for {
		r := next(t, got)
		ids = append(ids, r.msg.ID)
		if r.msg.ID == 2 {
			break
		}
	}
	if len(ids) != 4 {
		t.Errorf("requests for ids %v, want 3 tries of 1, then 2", ids)
	}
	if v := value(t, reg, "switchyard_omaha_server_notify_dropped_total", "reason", "attempts"); v != 1 {
		t.Errorf("dropped_total{attempts} = %v, want 1", v)
	}
	if v := value(t, reg, "switchyard_omaha_server_notify_failures_total"); v != 3 {
		t.Errorf("failures_total = %v, want 3", v)
	}
}

// TestQueueBound: while the receiver holds the first request, Notify still returns at
// once; past QueueSize the oldest waiting messages are dropped and counted, and the
// newest are delivered once the receiver answers.
func TestQueueBound(t *testing.T) {
	release := make(chan struct{})
	srv, got := receiver(t, func(r *http.Request, rc received) int {
		if rc.msg.ID == 1 {
			<-release
		}
		return http.StatusOK
	})
	n, reg := newNotifier(t, webhook.Config{URLs: []string{srv.URL}, QueueSize: 2})
	n.Notify(entry(1, store.ActionGroupHalt))
	if r := next(t, got); r.msg.ID != 1 {
		t.Fatalf("first %+v", r.msg)
	}
	for id := int64(2); id <= 6; id++ {
		n.Notify(entry(id, store.ActionGroupHalt)) // returns although the worker is stuck
	}
	if v := value(t, reg, "switchyard_omaha_server_notify_dropped_total", "reason", "queue_full"); v != 3 {
		t.Errorf("dropped_total{queue_full} = %v, want 3", v)
	}
	close(release)
	for _, want := range []int64{5, 6} {
		if r := next(t, got); r.msg.ID != want {
			t.Errorf("delivered %d, want %d (the newest kept)", r.msg.ID, want)
		}
	}
}

// TestCloseEndsWorkers: Close cancels a request the receiver holds and returns only when
// every worker has ended.
func TestCloseEndsWorkers(t *testing.T) {
	base := goleak.IgnoreCurrent()
	transport := &http.Transport{}
	held := make(chan struct{})
	srv, got := receiver(t, func(r *http.Request, _ received) int {
		<-r.Context().Done() // until the notifier gives up the request
		close(held)
		return http.StatusOK
	})
	n, err := webhook.New(context.Background(), webhook.Config{URLs: []string{srv.URL, srv.URL + "/second"},
		Client: &http.Client{Transport: transport}})
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(store.Activity{ID: 1, Action: store.ActionGroupHalt, Subject: "group/stable"})
	next(t, got)
	n.Close()
	<-held
	srv.Close()
	transport.CloseIdleConnections()
	goleak.VerifyNone(t, base)
}

// TestNewRefusesBadURLs: a receiver must be an http(s) URL; the error does not echo a
// query (which may carry a receiver's token).
func TestNewRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"", "ftp://example.com/x", "example.com/hook", "http:///nohost?token=s3cret"} {
		_, err := webhook.New(context.Background(), webhook.Config{URLs: []string{u}})
		if err == nil {
			t.Errorf("%q accepted", u)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error echoes the query: %v", err)
		}
	}
	if _, err := webhook.New(context.Background(), webhook.Config{}); err == nil {
		t.Error("no URL accepted")
	}
}

// blockingDoer holds each request until its context ends, says so on cancelled, and then
// returns only when release is closed: the request is still in its worker's hands.
type blockingDoer struct {
	entered, cancelled chan struct{}
	release            chan struct{}
}

func (d *blockingDoer) Do(r *http.Request) (*http.Response, error) {
	d.entered <- struct{}{}
	<-r.Context().Done()
	d.cancelled <- struct{}{}
	<-d.release
	return nil, r.Context().Err()
}

// TestCloseWaitsForTheWorker: Close cancels the request in flight at once (not after the
// attempt's timeout) and does not return while the worker is still inside it.
func TestCloseWaitsForTheWorker(t *testing.T) {
	base := goleak.IgnoreCurrent()
	d := &blockingDoer{entered: make(chan struct{}, 1), cancelled: make(chan struct{}, 1), release: make(chan struct{})}
	n, err := webhook.New(context.Background(), webhook.Config{URLs: []string{"http://receiver.invalid/hook"}, Client: d, Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(store.Activity{ID: 1, Action: store.ActionGroupPause, Subject: "group/stable"})
	<-d.entered
	closed := make(chan struct{})
	go func() { defer close(closed); n.Close() }()
	select {
	case <-d.cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not cancel the request in flight")
	}
	select {
	case <-closed:
		t.Fatal("Close returned while the worker was still in its request")
	default:
	}
	close(d.release)
	<-closed
	goleak.VerifyNone(t, base)
}

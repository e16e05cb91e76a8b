// Package loadgen drives an Omaha server with simulated Flatcar-style hosts and measures how
// fast it answers. It is a library for benchmarks and soak tests (omaha-server's benchmark
// calls Run); it imports only the standard library and the omaha package.
//
// # Model
//
// Run simulates Config.Hosts distinct hosts, each with its own machine id and boot id derived
// deterministically from Config.Seed and the host's index, so two runs with the same seed
// present the same fleet. Config.Concurrency workers each own a disjoint set of hosts (host i
// belongs to worker i mod Concurrency) and visit them in turn, one request at a time, so no
// host ever has two requests in flight and no locking is needed. Each host follows Flatcar's
// update_engine:
//
//	checking:  update check (ping, updatecheck, event 3/2 with previousversion)
//	           noupdate            → stay in checking
//	           offer               → downloading
//	downloading: event 13/1, then 14/1 (or, for a failing host, 3/0 errorcode 9 → checking)
//	installed: event 3/1, then Config.PingsBeforeReboot ping-only requests
//	rebooted:  the host now runs the offered version; its next check carries 3/2 with the
//	           old version, then previousversion="" again
//
// Every response is parsed with omaha.ParseResponse and checked: HTTP 200, the app answered,
// a ping ack for a ping, one event ack per event, updatecheck ok or noupdate. Anything else
// counts as an error (the first few are kept as examples) and the host goes back to checking.
//
// # Measurement
//
// Latency is measured per request from just before the request is marshaled and sent until
// the response is parsed, and recorded in per-worker log-bucket histograms (Histogram: fixed
// memory, about 1 % precision) that are merged at the end; samples are never stored. Requests cut off by
// the end of the run (context cancelled) are not counted. Throughput is completed requests
// divided by the wall time of the run, measured with Config.Now.
package loadgen

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
)

// Config describes one load run. BaseURL, Client and one of Duration or Requests are required.
type Config struct {
	BaseURL string       // server root, e.g. http://127.0.0.1:8080
	Path    string       // Omaha endpoint under BaseURL; "/v1/update/" when empty
	Client  *http.Client // used for every request

	Hosts       int           // distinct simulated hosts; 100 when zero
	Concurrency int           // requests in flight; 8 when zero, at most Hosts
	Duration    time.Duration // stop after this long
	Requests    int           // stop after this many requests (whichever of the two comes first)

	AppID   string // omaha.FlatcarAppID when empty
	Track   string // "stable" when empty
	Board   string // "amd64-usr" when empty
	Version string // the version every host starts on; "4081.2.0" when empty
	Seed    uint64 // varies machine ids between fleets

	// FailPercent of hosts (0–100, chosen by index) report a download failure (3/0,
	// errorcode 9) instead of finishing an offered update.
	FailPercent int
	// PingsBeforeReboot is how many ping-only requests an installed host sends before it
	// reboots into the new version; 1 when zero, none when negative.
	PingsBeforeReboot int

	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Report is the outcome of a run.
type Report struct {
	Elapsed time.Duration

	Requests int64 // completed, valid or not
	Checks   int64 // valid update-check answers
	Offers   int64 // of which offered an update
	Pings    int64 // valid ping-only answers
	Events   int64 // valid event-only answers
	Updated  int64 // hosts that rebooted into an offered version
	Errors   int64 // transport errors, non-200, unparsable or inconsistent answers

	ChecksPerSecond   float64
	RequestsPerSecond float64

	// CheckLatency is over valid update checks, Latency over every completed request.
	CheckLatency *Histogram
	Latency      *Histogram
	// P50 and P99 are CheckLatency's quantiles, the numbers a benchmark reports.
	P50, P99 time.Duration

	// ErrorSamples holds up to maxErrorSamples distinct error messages.
	ErrorSamples []string
}

const (
	maxErrorSamples = 5
	defaultHosts    = 100
	defaultConc     = 8
)

// String summarises the report on one line.
func (r *Report) String() string {
	return fmt.Sprintf("%d requests in %v: %.0f checks/s, %.0f requests/s, check p50 %v p99 %v, %d offers, %d updated, %d errors",
		r.Requests, r.Elapsed.Round(time.Millisecond), r.ChecksPerSecond, r.RequestsPerSecond,
		r.P50, r.P99, r.Offers, r.Updated, r.Errors)
}

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if cfg.BaseURL == "" {
		return cfg, errors.New("loadgen: no BaseURL")
	}
	if cfg.Client == nil {
		return cfg, errors.New("loadgen: no HTTP client")
	}
	if cfg.Duration <= 0 && cfg.Requests <= 0 {
		return cfg, errors.New("loadgen: neither Duration nor Requests set")
	}
	if cfg.FailPercent < 0 || cfg.FailPercent > 100 {
		return cfg, fmt.Errorf("loadgen: FailPercent %d not in 0..100", cfg.FailPercent)
	}
	if cfg.Path == "" {
		cfg.Path = "/v1/update/"
	}
	if cfg.Hosts <= 0 {
		cfg.Hosts = defaultHosts
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = defaultConc
	}
	if cfg.Concurrency > cfg.Hosts {
		cfg.Concurrency = cfg.Hosts
	}
	if cfg.AppID == "" {
		cfg.AppID = omaha.FlatcarAppID
	}
	if cfg.Track == "" {
		cfg.Track = "stable"
	}
	if cfg.Board == "" {
		cfg.Board = "amd64-usr"
	}
	if cfg.Version == "" {
		cfg.Version = "4081.2.0"
	}
	if _, err := omaha.ParseVersion(cfg.Version); err != nil {
		return cfg, fmt.Errorf("loadgen: start version: %w", err)
	}
	if cfg.PingsBeforeReboot == 0 {
		cfg.PingsBeforeReboot = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg, nil
}

// Run drives the server until Duration has passed, Requests have been sent or ctx ends, and
// reports what it measured. It returns an error only for a bad Config; failed requests are
// counted in the report.
func Run(ctx context.Context, c Config) (*Report, error) {
	cfg, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	url := strings.TrimSuffix(cfg.BaseURL, "/") + "/" + strings.TrimPrefix(cfg.Path, "/")
	// A run bounded by a count splits it between the workers in proportion to their hosts,
	// so every host gets its share however fast each worker goes.
	workers := make([]*worker, cfg.Concurrency)
	given := int64(0)
	for w := range workers {
		wk := &worker{cfg: &cfg, url: url, check: NewHistogram(), all: NewHistogram()}
		for i := w; i < cfg.Hosts; i += cfg.Concurrency {
			wk.hosts = append(wk.hosts, newHost(&cfg, i))
		}
		wk.budget = &budget{unlimited: cfg.Requests <= 0}
		if !wk.budget.unlimited {
			wk.budget.left = int64(cfg.Requests) * int64(len(wk.hosts)) / int64(cfg.Hosts)
			given += wk.budget.left
		}
		workers[w] = wk
	}
	for w := 0; cfg.Requests > 0 && given < int64(cfg.Requests); w = (w + 1) % len(workers) {
		workers[w].budget.left++
		given++
	}
	start := cfg.Now()
	// The deadline is set after start, so a run bounded by Duration never reports less.
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	var wg sync.WaitGroup
	for _, wk := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wk.run(ctx)
		}()
	}
	wg.Wait()
	elapsed := cfg.Now().Sub(start)

	r := &Report{Elapsed: elapsed, CheckLatency: NewHistogram(), Latency: NewHistogram()}
	seen := map[string]bool{}
	for _, wk := range workers {
		r.Requests += wk.stats.requests
		r.Checks += wk.stats.checks
		r.Offers += wk.stats.offers
		r.Pings += wk.stats.pings
		r.Events += wk.stats.events
		r.Updated += wk.stats.updated
		r.Errors += wk.stats.errors
		r.CheckLatency.Merge(wk.check)
		r.Latency.Merge(wk.all)
		for _, s := range wk.stats.samples {
			if !seen[s] && len(r.ErrorSamples) < maxErrorSamples {
				seen[s] = true
				r.ErrorSamples = append(r.ErrorSamples, s)
			}
		}
	}
	if secs := elapsed.Seconds(); secs > 0 {
		r.ChecksPerSecond = float64(r.Checks) / secs
		r.RequestsPerSecond = float64(r.Requests) / secs
	}
	r.P50 = r.CheckLatency.Quantile(0.50)
	r.P99 = r.CheckLatency.Quantile(0.99)
	return r, nil
}

// budget hands out one worker's request tickets when the run is bounded by a count.
type budget struct {
	left      int64
	unlimited bool
}

func (b *budget) take() bool {
	if b.unlimited {
		return true
	}
	if b.left <= 0 {
		return false
	}
	b.left--
	return true
}

// hostState is where a simulated host is in its update cycle (see the package doc).
type hostState int

const (
	stateChecking hostState = iota
	stateDownloadStarted
	stateDownloadFinished
	stateInstalled
)

type host struct {
	omaha.Host
	fails    bool
	state    hostState
	previous string // sent once as 3/2 previousversion after a reboot
	offered  string // version of the offer being applied
	pings    int    // ping-only requests sent while installed
}

func newHost(cfg *Config, i int) *host {
	var seed [16]byte
	binary.BigEndian.PutUint64(seed[:8], cfg.Seed)
	binary.BigEndian.PutUint64(seed[8:], uint64(i))
	sum := sha256.Sum256(seed[:])
	machineID := hex.EncodeToString(sum[:16])
	b := hex.EncodeToString(sum[16:32])
	bootID := "{" + b[0:8] + "-" + b[8:12] + "-" + b[12:16] + "-" + b[16:20] + "-" + b[20:32] + "}"
	return &host{
		Host: omaha.Host{
			AppID:     cfg.AppID,
			Version:   cfg.Version,
			Track:     cfg.Track,
			Board:     cfg.Board,
			Machine:   "x86_64",
			MachineID: machineID,
			BootID:    bootID,
			OEM:       "qemu",
		},
		// Hosts whose index falls in the first FailPercent of every hundred fail.
		fails: i%100 < cfg.FailPercent,
	}
}

// kind of request, for counting.
type kind int

const (
	kindCheck kind = iota
	kindPing
	kindEvent
)

// next builds the host's next request.
func (h *host) next() (*omaha.Request, kind) {
	switch h.state {
	case stateDownloadStarted:
		if h.fails {
			return omaha.NewEventRequest(h.Host, omaha.EventError(omaha.ErrorCodeDownloadTransferError, "")), kindEvent
		}
		return omaha.NewEventRequest(h.Host, omaha.EventDownloadFinished()), kindEvent
	case stateDownloadFinished:
		return omaha.NewEventRequest(h.Host, omaha.EventInstalled()), kindEvent
	case stateInstalled:
		return omaha.NewPingRequest(h.Host), kindPing
	}
	return omaha.NewUpdateCheckRequest(h.Host, false, omaha.EventRebooted(h.previous)), kindCheck
}

// advance moves the host on after a valid answer; offer is non-nil when a check got one.
func (h *host) advance(k kind, offer *omaha.Offer, pingsBeforeReboot int) (updated bool) {
	switch h.state {
	case stateChecking:
		h.previous = ""
		if offer != nil {
			h.offered = offer.Version
			h.state = stateDownloadStarted
			return false
		}
	case stateDownloadStarted:
		if h.fails {
			h.state = stateChecking
		} else {
			h.state = stateDownloadFinished
		}
	case stateDownloadFinished:
		h.state = stateInstalled
		h.pings = 0
		if pingsBeforeReboot < 0 {
			return h.reboot()
		}
	case stateInstalled:
		h.pings++
		if h.pings >= pingsBeforeReboot {
			return h.reboot()
		}
	}
	return false
}

func (h *host) reboot() bool {
	h.previous = h.Version
	h.Version = h.offered
	h.state = stateChecking
	return true
}

// downloadStarted is the 13/1 report a host sends right after the check that got an offer.
func (h *host) downloadStarted() *omaha.Request {
	return omaha.NewEventRequest(h.Host, omaha.EventDownloadStarted())
}

type stats struct {
	requests, checks, offers, pings, events, updated, errors int64
	samples                                                  []string
}

type worker struct {
	cfg    *Config
	url    string
	budget *budget
	hosts  []*host
	check  *Histogram
	all    *Histogram
	stats  stats
}

func (w *worker) run(ctx context.Context) {
	for i := 0; ; i = (i + 1) % len(w.hosts) {
		if ctx.Err() != nil {
			return
		}
		h := w.hosts[i]
		req, k := h.next()
		if !w.do(ctx, h, req, k) {
			return
		}
		// An offer is followed at once by 13/1, as update_engine does before downloading.
		if h.state == stateDownloadStarted {
			if !w.do(ctx, h, h.downloadStarted(), kindEvent) {
				return
			}
		}
	}
}

// do sends one request and records it; it returns false when the run is over.
func (w *worker) do(ctx context.Context, h *host, req *omaha.Request, k kind) bool {
	if !w.budget.take() {
		return false
	}
	start := w.cfg.Now()
	offer, err := w.exchange(ctx, req)
	took := w.cfg.Now().Sub(start)
	if ctx.Err() != nil {
		return false // cut off by the end of the run: not a sample
	}
	w.stats.requests++
	w.all.Record(took)
	if err != nil {
		w.fail(h, err)
		return true
	}
	isStart := k == kindEvent && len(req.Apps[0].Events) == 1 && req.Apps[0].Events[0].Type == omaha.EventTypeUpdateDownloadStarted
	switch k {
	case kindCheck:
		w.stats.checks++
		w.check.Record(took)
		if offer != nil {
			w.stats.offers++
		}
	case kindPing:
		w.stats.pings++
	case kindEvent:
		w.stats.events++
	}
	if !isStart && h.advance(k, offer, w.cfg.PingsBeforeReboot) {
		w.stats.updated++
	}
	return true
}

func (w *worker) fail(h *host, err error) {
	w.stats.errors++
	if len(w.stats.samples) < maxErrorSamples {
		w.stats.samples = append(w.stats.samples, err.Error())
	}
	h.state = stateChecking
}

// exchange sends req and checks the answer against what it asked; it returns the offer when
// an update check got one.
func (w *worker) exchange(ctx context.Context, req *omaha.Request) (*omaha.Offer, error) {
	r, err := omaha.Send(ctx, w.cfg.Client, w.url, req, omaha.Limits{})
	if err != nil {
		return nil, err
	}
	app := req.Apps[0]
	a := r.App(app.AppID)
	if a == nil {
		return nil, fmt.Errorf("no app %s in the response", app.AppID)
	}
	if a.Status.IsError() {
		return nil, &omaha.StatusError{AppID: a.AppID, AppStatus: a.Status}
	}
	if app.Ping != nil && (a.Ping == nil || a.Ping.Status != "ok") {
		return nil, errors.New("ping not acknowledged")
	}
	if len(a.Events) != len(app.Events) {
		return nil, fmt.Errorf("%d event acks for %d events", len(a.Events), len(app.Events))
	}
	if app.UpdateCheck == nil {
		return nil, nil
	}
	offer, err := r.Offer(app.AppID)
	if errors.Is(err, omaha.ErrNoUpdate) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return offer, nil
}

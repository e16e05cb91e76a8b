package rebootlock

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the lock's Prometheus gauges, labelled by group. They are updated whenever a
// Semaphore reads its group (Status, and every round of Lock).
type Metrics struct {
	holders   *prometheus.GaugeVec
	stale     *prometheus.GaugeVec
	max       *prometheus.GaugeVec
	reclaimed *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		holders: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_rebootlock_holders",
			Help: "Hosts holding a reboot slot, per group.",
		}, []string{"group"}),
		stale: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_rebootlock_stale_holders",
			Help: "Holders with neither liveness nor an unexpired reboot deadline: hosts that did not come back.",
		}, []string{"group"}),
		max: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_rebootlock_max_holders",
			Help: "The group's configured number of reboot slots.",
		}, []string{"group"}),
		reclaimed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_rebootlock_reclaimed_total",
			Help: "Slots of stale holders freed by Reclaim or automatic reclaim.",
		}, []string{"group"}),
	}
	for _, c := range []prometheus.Collector{m.holders, m.stale, m.max, m.reclaimed} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("rebootlock: registering metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) observe(st Status) {
	if m == nil {
		return
	}
	stale := 0
	for _, h := range st.Holders {
		if h.Stale {
			stale++
		}
	}
	m.holders.WithLabelValues(st.Group).Set(float64(len(st.Holders)))
	m.stale.WithLabelValues(st.Group).Set(float64(stale))
	m.max.WithLabelValues(st.Group).Set(float64(st.Max))
}

func (m *Metrics) reclaim(group string) {
	if m != nil {
		m.reclaimed.WithLabelValues(group).Inc()
	}
}

// Monitor reads the group every interval until ctx ends, so that Metrics stay current
// (stale holders appear in the gauge without anyone running status), and logs each holder
// that turns stale once. omaha-server and the daemon run it in a goroutine. Read errors
// are logged and retried at the next tick.
func (s *Semaphore) Monitor(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Minute
	}
	reported := map[string]bool{}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		st, err := s.Status(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("reading the reboot lock failed", "err", err)
		}
		if err == nil {
			now := map[string]bool{}
			for _, h := range st.Holders {
				if h.Stale {
					now[h.ID] = true
					if !reported[h.ID] {
						s.log.Warn("reboot slot holder is stale: its host did not come back", "id", h.ID, "hostname", h.Hostname, "since", h.Since)
					}
				}
			}
			for id := range reported {
				if !now[id] {
					s.log.Info("stale reboot slot holder gone (released or reclaimed)", "id", id)
				}
			}
			reported = now
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

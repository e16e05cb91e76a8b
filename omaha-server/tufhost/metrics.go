package tufhost

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-os/switchyard/signing/tuf"
)

// collector exports the served state at scrape time, so the numbers are never stale:
//
//	switchyard_tuf_metadata_version{role}                    version served per role
//	switchyard_tuf_metadata_expiry_timestamp_seconds{role}   when each served role expires
//	switchyard_tuf_signing_failures_total                    failed online signings
//	switchyard_omaha_server_tuf_expiry_seconds{role}         seconds until each served role
//	                                                         expires (negative once expired)
//	switchyard_tuf_signing_leader                            1 while this replica holds the
//	                                                         signing lease (as of its last
//	                                                         renewal), else 0
//
// The seconds are computed with the host's clock (Config.Now) at scrape time, so an alert
// needs no time() arithmetic: packaging/prometheus/alerts.yml fires below 12 hours, for
// timestamp and snapshot (the server must keep them fresh) and for targets and root (a
// release engineer must act).
type collector struct {
	h        *Host
	version  *prometheus.Desc
	expiry   *prometheus.Desc
	left     *prometheus.Desc
	leader   *prometheus.Desc
	failures prometheus.Counter
}

func newCollector(h *Host) *collector {
	return &collector{
		h:       h,
		version: prometheus.NewDesc("switchyard_tuf_metadata_version", "Version of the TUF metadata served, per role.", []string{"role"}, nil),
		expiry:  prometheus.NewDesc("switchyard_tuf_metadata_expiry_timestamp_seconds", "Expiry of the TUF metadata served, per role, as a Unix time.", []string{"role"}, nil),
		left:    prometheus.NewDesc("switchyard_omaha_server_tuf_expiry_seconds", "Seconds until the TUF metadata served expires, per role (negative once expired).", []string{"role"}, nil),
		leader:  prometheus.NewDesc("switchyard_tuf_signing_leader", "1 while this replica holds the TUF signing lease, else 0.", nil, nil),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_tuf_signing_failures_total",
			Help: "Failed attempts to sign snapshot or timestamp metadata.",
		}),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.version
	ch <- c.expiry
	ch <- c.left
	ch <- c.leader
	c.failures.Describe(ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.h.mu.RLock()
	type row struct {
		role    string
		version int64
		expires time.Time
	}
	rows := []row{{tuf.RoleRoot, c.h.root.Signed.Version, c.h.root.Signed.Expires}}
	if c.h.targets != nil {
		rows = append(rows,
			row{tuf.RoleTargets, c.h.targets.Signed.Version, c.h.targets.Signed.Expires},
			row{tuf.RoleSnapshot, c.h.snapshot.Signed.Version, c.h.snapshot.Signed.Expires},
			row{tuf.RoleTimestamp, c.h.timestamp.Signed.Version, c.h.timestamp.Signed.Expires})
	}
	c.h.mu.RUnlock()
	now := c.h.cfg.Now()
	for _, r := range rows {
		ch <- prometheus.MustNewConstMetric(c.left, prometheus.GaugeValue, r.expires.Sub(now).Seconds(), r.role)
		ch <- prometheus.MustNewConstMetric(c.version, prometheus.GaugeValue, float64(r.version), r.role)
		ch <- prometheus.MustNewConstMetric(c.expiry, prometheus.GaugeValue, float64(r.expires.Unix()), r.role)
	}
	leader := 0.0
	if c.h.Leading() {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(c.leader, prometheus.GaugeValue, leader)
	c.failures.Collect(ch)
}

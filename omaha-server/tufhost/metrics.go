package tufhost

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-os/switchyard/signing/tuf"
)

// collector exports the served state at scrape time, so the numbers are never stale:
//
//	switchyard_tuf_metadata_version{role}                    version served per role
//	switchyard_tuf_metadata_expiry_timestamp_seconds{role}   when each served role expires
//	switchyard_tuf_signing_failures_total                    failed online signings
//
// Alert on expiry minus time() for timestamp (the server must keep it fresh) and for
// targets and root (a release engineer must act).
type collector struct {
	h        *Host
	version  *prometheus.Desc
	expiry   *prometheus.Desc
	failures prometheus.Counter
}

func newCollector(h *Host) *collector {
	return &collector{
		h:       h,
		version: prometheus.NewDesc("switchyard_tuf_metadata_version", "Version of the TUF metadata served, per role.", []string{"role"}, nil),
		expiry:  prometheus.NewDesc("switchyard_tuf_metadata_expiry_timestamp_seconds", "Expiry of the TUF metadata served, per role, as a Unix time.", []string{"role"}, nil),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_tuf_signing_failures_total",
			Help: "Failed attempts to sign snapshot or timestamp metadata.",
		}),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.version
	ch <- c.expiry
	c.failures.Describe(ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.h.mu.RLock()
	type row struct {
		role    string
		version int64
		expires int64
	}
	rows := []row{{tuf.RoleRoot, c.h.root.Signed.Version, c.h.root.Signed.Expires.Unix()}}
	if c.h.targets != nil {
		rows = append(rows,
			row{tuf.RoleTargets, c.h.targets.Signed.Version, c.h.targets.Signed.Expires.Unix()},
			row{tuf.RoleSnapshot, c.h.snapshot.Signed.Version, c.h.snapshot.Signed.Expires.Unix()},
			row{tuf.RoleTimestamp, c.h.timestamp.Signed.Version, c.h.timestamp.Signed.Expires.Unix()})
	}
	c.h.mu.RUnlock()
	for _, r := range rows {
		ch <- prometheus.MustNewConstMetric(c.version, prometheus.GaugeValue, float64(r.version), r.role)
		ch <- prometheus.MustNewConstMetric(c.expiry, prometheus.GaugeValue, float64(r.expires), r.role)
	}
	c.failures.Collect(ch)
}

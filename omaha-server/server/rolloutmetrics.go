package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-os/switchyard/omaha-server/catalog"
)

// rolloutCollector exports each group's rollout state at scrape time, from the catalog
// snapshot the Omaha handler already caches (so the check path does no extra work):
//
//	switchyard_omaha_server_group_halted{app,group}   1 while the automatic halt holds the group
//	switchyard_omaha_server_group_paused{app,group}   1 while an operator paused it
//
// An automatic halt is written in a check-in transaction that also bumps the catalog
// generation, and so are pauses and resumes, so the snapshot sees them within one TTL.
// Before the first snapshot is loaded nothing is exported.
type rolloutCollector struct {
	cat    *catalog.Cache
	halted *prometheus.Desc
	paused *prometheus.Desc
}

func newRolloutCollector(cat *catalog.Cache) *rolloutCollector {
	labels := []string{"app", "group"}
	return &rolloutCollector{
		cat:    cat,
		halted: prometheus.NewDesc("switchyard_omaha_server_group_halted", "1 while the automatic halt stops the group's rollout, else 0.", labels, nil),
		paused: prometheus.NewDesc("switchyard_omaha_server_group_paused", "1 while the group's rollout is paused by an operator, else 0.", labels, nil),
	}
}

func (c *rolloutCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.halted
	ch <- c.paused
}

func (c *rolloutCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.cat.Current()
	if snap == nil {
		return
	}
	for _, g := range snap.Groups() {
		ch <- prometheus.MustNewConstMetric(c.halted, prometheus.GaugeValue, bit(g.Halted()), g.AppID, g.Name)
		ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, bit(g.Paused), g.AppID, g.Name)
	}
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// refreshCatalog brings the catalog snapshot up to date (within its TTL) with the scrape's
// context before the registry is gathered, since a collector gets no context of its own.
// A store that does not answer leaves the last snapshot in place: the scrape still
// answers, and the failure is logged.
func (s *Server) refreshCatalog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.catalog.Get(r.Context()); err != nil {
			s.log.Warn("metrics: refreshing the catalog", "err", err)
		}
		next.ServeHTTP(w, r)
	})
}

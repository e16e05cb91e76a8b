package server

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// The fleet gauge, read from the store's instance counts at scrape time:
//
//	switchyard_omaha_server_instances{app,group,channel,version,status}   instances in that state
//	switchyard_omaha_server_instances_dropped_series                      series left out by the cap
//
// The counts are kept exact in every check-in's transaction (store.StatusCounts reads
// them), so every replica on one database reports the same numbers, and a scrape costs
// one small query per application, not a scan of the instances. The channel is the
// group's, from the catalog snapshot /metrics has just refreshed ("" for hosts in no
// group).
//
// Hosts choose the version they report, so the label values are not the server's to
// bound: at most MaxInstanceSeries series are exported, the largest counts first, and
// the rest are counted in …_instances_dropped_series. Keys at zero are never exported.
// The read has InstancesScrapeTimeout; when the store does not answer in time the
// instance series are left out of that scrape (and a warning logged), the rest of
// /metrics still answers.
const (
	MaxInstanceSeries      = 10_000
	InstancesScrapeTimeout = 3 * time.Second
)

var (
	instancesDesc = prometheus.NewDesc("switchyard_omaha_server_instances",
		"Instances by application, group, the group's channel, version and status (from the store's instance counts).",
		[]string{"app", "group", "channel", "version", "status"}, nil)
	instancesDroppedDesc = prometheus.NewDesc("switchyard_omaha_server_instances_dropped_series",
		"Series of switchyard_omaha_server_instances left out at this scrape because there were more than the cap.", nil, nil)
)

// instanceSeries reads the instance counts of every application with ctx and returns them
// as metrics, capped at maxSeries.
func (s *Server) instanceSeries(ctx context.Context, maxSeries int) ([]prometheus.Metric, error) {
	apps, err := s.store.ListApps(ctx)
	if err != nil {
		return nil, err
	}
	channels := map[[2]string]string{}
	if snap := s.catalog.Current(); snap != nil {
		for _, g := range snap.Groups() {
			channels[[2]string{g.AppID, g.Name}] = g.Channel
		}
	}
	type series struct {
		app string
		store.StatusCount
	}
	var all []series
	for _, a := range apps {
		cs, err := s.store.StatusCounts(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if c.Count > 0 {
				all = append(all, series{a.ID, c})
			}
		}
	}
	dropped := 0
	if len(all) > maxSeries {
		slices.SortFunc(all, func(x, y series) int {
			return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.app, y.app), cmp.Compare(x.Group, y.Group),
				cmp.Compare(x.Version, y.Version), cmp.Compare(x.Status, y.Status))
		})
		dropped = len(all) - maxSeries
		all = all[:maxSeries]
	}
	out := make([]prometheus.Metric, 0, len(all)+1)
	for _, c := range all {
		out = append(out, prometheus.MustNewConstMetric(instancesDesc, prometheus.GaugeValue, float64(c.Count),
			c.app, c.Group, channels[[2]string{c.app, c.Group}], c.Version, string(c.Status)))
	}
	return append(out, prometheus.MustNewConstMetric(instancesDroppedDesc, prometheus.GaugeValue, float64(dropped))), nil
}

// metrics serves the registry plus the instance series read for this scrape (with the
// request's context, bounded by InstancesScrapeTimeout).
func (s *Server) metrics(maxSeries int) http.Handler {
	opts := promhttp.HandlerOpts{Registry: s.registry}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), InstancesScrapeTimeout)
		ms, err := s.instanceSeries(ctx, maxSeries)
		cancel()
		if err != nil {
			s.log.Warn("metrics: reading the instance counts", "err", err)
		}
		scrape := prometheus.NewRegistry()
		scrape.MustRegister(constCollector(ms))
		promhttp.HandlerFor(prometheus.Gatherers{s.registry, scrape}, opts).ServeHTTP(w, r)
	})
}

// constCollector collects metrics read already.
type constCollector []prometheus.Metric

func (c constCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c constCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c {
		ch <- m
	}
}

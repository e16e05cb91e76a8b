// Package metrics holds update-engine's Prometheus metrics.
//
// Names follow switchyard_<area>_<thing>_<unit> with the area "update_engine":
//
//	switchyard_update_engine_status{status}            1 for the current status, 0 for the others
//	switchyard_update_engine_checks_total{result}      Omaha checks: noupdate, update, error
//	switchyard_update_engine_last_check_timestamp_seconds
//	switchyard_update_engine_download_bytes_total      payload bytes received
//	switchyard_update_engine_progress_ratio            0..1 of the current update
//	switchyard_update_engine_updates_total{result}     finished attempts: applied, failed
//	switchyard_update_engine_errors_total{code}        failures by Omaha error code
//	switchyard_update_engine_next_check_timestamp_seconds
//	switchyard_update_engine_os_info{version,board,group}  1, labelled with what the host runs
//	switchyard_update_engine_reboot_pending            1 while updated and waiting to reboot
//	                                                   (status NeedRebootStatus: for the reboot
//	                                                   lock, the reboot window or a person)
//
// With REBOOT_STRATEGY=etcd-lock the daemon also registers rebootlock's gauges
// (switchyard_rebootlock_holders, …_stale_holders, …_max_holders, …_reclaimed_total) for its
// lock group on the same registry and keeps them current (see cmd/update-engine).
//
// A nil *Metrics is valid and records nothing, so tests and one-shot runs need no registry.
// The registry is passed in; nothing registers globally.
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// NeedRebootStatus is the status in which reboot_pending is 1 (engine.StatusUpdatedNeedReboot;
// a test in this package checks that they agree).
const NeedRebootStatus = "UPDATE_STATUS_UPDATED_NEED_REBOOT"

// Metrics is the daemon's set of collectors.
type Metrics struct {
	status        *prometheus.GaugeVec
	checks        *prometheus.CounterVec
	lastCheck     prometheus.Gauge
	nextCheck     prometheus.Gauge
	downloadBytes prometheus.Counter
	progress      prometheus.Gauge
	updates       *prometheus.CounterVec
	errors        *prometheus.CounterVec
	osInfo        *prometheus.GaugeVec
	rebootPending prometheus.Gauge
	statuses      []string
}

// New creates the collectors and registers them with reg. statuses lists every status name so
// the gauge has a series for each from the start.
func New(reg prometheus.Registerer, statuses []string) (*Metrics, error) {
	const ns, sub = "switchyard", "update_engine"
	m := &Metrics{
		status: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "status",
			Help: "1 for the daemon's current status."}, []string{"status"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "checks_total",
			Help: "Omaha update checks by result."}, []string{"result"}),
		lastCheck: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "last_check_timestamp_seconds",
			Help: "Time of the last completed update check."}),
		nextCheck: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "next_check_timestamp_seconds",
			Help: "Time the next scheduled update check is due."}),
		downloadBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "download_bytes_total",
			Help: "Payload bytes received."}),
		progress: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "progress_ratio",
			Help: "Progress of the current update, 0 to 1."}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "updates_total",
			Help: "Finished update attempts by result."}, []string{"result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "errors_total",
			Help: "Failures reported to the server, by Omaha error code."}, []string{"code"}),
		osInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "os_info",
			Help: "1, labelled with the running OS version, the board and the update group."}, []string{"version", "board", "group"}),
		rebootPending: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "reboot_pending",
			Help: "1 while an update is applied and the host waits to reboot (the reboot lock, a reboot window or a person), else 0."}),
		statuses: statuses,
	}
	for _, c := range []prometheus.Collector{m.status, m.checks, m.lastCheck, m.nextCheck, m.downloadBytes, m.progress, m.updates, m.errors, m.osInfo, m.rebootPending} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, s := range statuses {
		m.status.WithLabelValues(s).Set(0)
	}
	return m, nil
}

// SetStatus marks s as the current status.
func (m *Metrics) SetStatus(s string) {
	if m == nil {
		return
	}
	for _, o := range m.statuses {
		v := 0.0
		if o == s {
			v = 1
		}
		m.status.WithLabelValues(o).Set(v)
	}
	pending := 0.0
	if s == NeedRebootStatus {
		pending = 1
	}
	m.rebootPending.Set(pending)
}

// OSInfo sets the info gauge: one series, for the running version, board and group (any
// earlier series is removed).
func (m *Metrics) OSInfo(version, board, group string) {
	if m == nil {
		return
	}
	m.osInfo.Reset()
	m.osInfo.WithLabelValues(version, board, group).Set(1)
}

// Check records a finished check; result is "noupdate", "update" or "error".
func (m *Metrics) Check(t time.Time, result string) {
	if m == nil {
		return
	}
	m.checks.WithLabelValues(result).Inc()
	m.lastCheck.Set(float64(t.Unix()))
}

// NextCheck records when the next check is due.
func (m *Metrics) NextCheck(t time.Time) {
	if m == nil {
		return
	}
	m.nextCheck.Set(float64(t.Unix()))
}

// Downloaded adds received payload bytes.
func (m *Metrics) Downloaded(n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.downloadBytes.Add(float64(n))
}

// Progress sets the progress ratio.
func (m *Metrics) Progress(f float64) {
	if m == nil {
		return
	}
	m.progress.Set(f)
}

// Update records a finished attempt; code is the Omaha error code, 0 on success.
func (m *Metrics) Update(code uint32) {
	if m == nil {
		return
	}
	if code == 0 {
		m.updates.WithLabelValues("applied").Inc()
		return
	}
	m.updates.WithLabelValues("failed").Inc()
	m.errors.WithLabelValues(strconv.FormatUint(uint64(code), 10)).Inc()
}

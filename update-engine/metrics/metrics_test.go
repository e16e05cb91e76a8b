package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// value returns the value of the series name{label=labelValue} (label "" for none).
func value(t *testing.T, reg *prometheus.Registry, name, label, labelValue string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				match = match || (lp.GetName() == label && lp.GetValue() == labelValue)
			}
			if !match {
				continue
			}
			switch {
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			}
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, []string{"UPDATE_STATUS_IDLE", "UPDATE_STATUS_DOWNLOADING"})
	if err != nil {
		t.Fatal(err)
	}
	m.SetStatus("UPDATE_STATUS_DOWNLOADING")
	m.Check(time.Unix(1000, 0), "update")
	m.NextCheck(time.Unix(4000, 0))
	m.Downloaded(4096)
	m.Progress(0.5)
	m.Update(0)
	m.Update(10)
	tests := []struct {
		name, label, lv string
		want            float64
	}{
		{"switchyard_update_engine_status", "status", "UPDATE_STATUS_DOWNLOADING", 1},
		{"switchyard_update_engine_status", "status", "UPDATE_STATUS_IDLE", 0},
		{"switchyard_update_engine_checks_total", "result", "update", 1},
		{"switchyard_update_engine_last_check_timestamp_seconds", "", "", 1000},
		{"switchyard_update_engine_next_check_timestamp_seconds", "", "", 4000},
		{"switchyard_update_engine_download_bytes_total", "", "", 4096},
		{"switchyard_update_engine_progress_ratio", "", "", 0.5},
		{"switchyard_update_engine_updates_total", "result", "applied", 1},
		{"switchyard_update_engine_updates_total", "result", "failed", 1},
		{"switchyard_update_engine_errors_total", "code", "10", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.lv, func(t *testing.T) {
			got, ok := value(t, reg, tt.name, tt.label, tt.lv)
			if !ok || got != tt.want {
				t.Errorf("= %v (found %v), want %v", got, ok, tt.want)
			}
		})
	}
	// Registering twice on one registry is refused, not a panic.
	if _, err := New(reg, nil); err == nil {
		t.Error("second registration succeeded")
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.SetStatus("x")
	m.Check(time.Now(), "error")
	m.NextCheck(time.Now())
	m.Downloaded(1)
	m.Progress(1)
	m.Update(3)
}

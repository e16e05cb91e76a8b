package packaging

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The monitoring files shipped next to the packages: Prometheus alert rules with their
// promtool unit tests, and the Grafana fleet dashboard.
const (
	alertRules = "prometheus/alerts.yml"
	alertTests = "prometheus/alerts_test.yml"
	dashboard  = "grafana/switchyard-fleet.json"
)

// TestAlertRules checks alerts.yml with promtool and runs its unit tests (alerts_test.yml:
// input series and the alerts each rule must and must not raise).
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("SKIPPED: promtool not found: install Debian's prometheus package (make deps) to check packaging/prometheus/alerts.yml")
	}
	for _, args := range [][]string{{"check", "rules", filepath.Base(alertRules)}, {"test", "rules", filepath.Base(alertTests)}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Dir(alertRules)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// metricName matches a Switchyard metric name in a rule expression, a dashboard query or
// a Go string literal.
var metricName = regexp.MustCompile(`switchyard_[a-z0-9_]*[a-z0-9]`)

// registeredMetrics returns the metric names the Go code registers: string literals
// "switchyard_…" and the Namespace/Subsystem/Name form (update-engine/metrics), read from
// every non-test Go file of the module.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	literal := regexp.MustCompile(`"(switchyard_[a-z0-9_]+)"`)
	nsSub := regexp.MustCompile(`const ns, sub = "([a-z_]+)", "([a-z_]+)"`)
	name := regexp.MustCompile(`Subsystem: sub, Name: "([a-z0-9_]+)"`)
	names := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "build") && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range literal.FindAllSubmatch(src, -1) {
			names[string(m[1])] = true
		}
		if ns := nsSub.FindSubmatch(src); ns != nil {
			for _, m := range name.FindAllSubmatch(src, -1) {
				names[string(ns[1])+"_"+string(ns[2])+"_"+string(m[1])] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !names["switchyard_update_engine_status"] || !names["switchyard_omaha_server_group_halted"] {
		t.Fatalf("the scan of the Go code found too little: %v", names)
	}
	return names
}

// missing returns the metric names in text that the code does not register (histogram
// series _bucket, _sum and _count count as their histogram).
func missing(text string, registered map[string]bool) []string {
	var out []string
	for _, n := range metricName.FindAllString(text, -1) {
		base := n
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(n, suf); ok && registered[b] {
				base = b
			}
		}
		if !registered[base] && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// TestAlertRulesNameRealMetrics: every metric an alert rule reads is one the code exports.
func TestAlertRulesNameRealMetrics(t *testing.T) {
	rules, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	if m := missing(string(rules), registeredMetrics(t)); len(m) > 0 {
		t.Errorf("%s names metrics no code registers: %v", alertRules, m)
	}
}

// TestDashboard: the Grafana dashboard is JSON with panels whose queries name only metrics
// the code exports, and it covers the alerts' metrics.
func TestDashboard(t *testing.T) {
	raw, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			t.Fatalf("%s: not JSON at byte %d: %v", dashboard, se.Offset, err)
		}
		t.Fatalf("%s: %v", dashboard, err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: uid %q, title %q, %d panels", dashboard, d.UID, d.Title, len(d.Panels))
	}
	registered := registeredMetrics(t)
	var exprs strings.Builder
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if metricName.FindString(tg.Expr) == "" {
				t.Errorf("panel %q: query %q names no switchyard metric", p.Title, tg.Expr)
			}
			exprs.WriteString(tg.Expr + "\n")
		}
	}
	if m := missing(exprs.String(), registered); len(m) > 0 {
		t.Errorf("%s names metrics no code registers: %v", dashboard, m)
	}
	rules, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range metricName.FindAllString(string(rules), -1) {
		if !strings.Contains(exprs.String(), n) {
			t.Errorf("the dashboard shows no panel of %s, which an alert reads", n)
		}
	}
}

package tufhost

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
)

// scrape reads /metrics from srv and returns the samples of name by their label role.
func scrape(t *testing.T, srv *httptest.Server, name string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<20))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name+`{role="`)
		if !ok {
			continue
		}
		role, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			t.Fatalf("unexpected line %q", line)
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out[role] = v
	}
	return out
}

func TestExpirySecondsMetric(t *testing.T) {
	onStorages(t, func(t *testing.T, kind string) {
		f := newFixtureOn(t, kind, 1, 1)
		reg := prometheus.NewRegistry()
		h, err := Open(context.Background(), f.storage(Config{Keys: f.onlineKeys, InitialRoot: f.rootData,
			Payloads: DirPayloads(f.payloadDir), Now: f.clock.Now, Registerer: reg}))
		if err != nil {
			t.Fatal(err)
		}
		f.setHost(h)
		srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		t.Cleanup(srv.Close)

		// Before any targets: root only.
		left := scrape(t, srv, "switchyard_omaha_server_tuf_expiry_seconds")
		if len(left) != 1 || left[tuf.RoleRoot] <= 0 {
			t.Fatalf("before targets: %v", left)
		}

		p := f.payload([]byte("payload"), "1.2.3")
		f.publish(Upload{Targets: f.signTargets(1, tuf.Expiry(f.clock.Now(), tuf.DefaultTargetsExpiry), f.targetKey,
			map[string]repo.Target{"amd64-usr/1.2.3/payload.sy": p})})
		f.clock.Add(time.Hour)
		left = scrape(t, srv, "switchyard_omaha_server_tuf_expiry_seconds")
		at := scrape(t, srv, "switchyard_tuf_metadata_expiry_timestamp_seconds")
		now := float64(f.clock.Now().Unix())
		for _, role := range []string{tuf.RoleRoot, tuf.RoleTargets, tuf.RoleSnapshot, tuf.RoleTimestamp} {
			v, ok := left[role]
			if !ok {
				t.Errorf("%s: no expiry seconds in %v", role, left)
				continue
			}
			if v != at[role]-now {
				t.Errorf("%s: %v seconds left, want expiry %v - now %v", role, v, at[role], now)
			}
		}
		// The timestamp was signed an hour ago for DefaultTimestampExpiry.
		if want := (tuf.DefaultTimestampExpiry - time.Hour).Seconds(); left[tuf.RoleTimestamp] != want {
			t.Errorf("timestamp: %v seconds left, want %v", left[tuf.RoleTimestamp], want)
		}
	})
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/partitions/layout"
)

// benchDir holds the 1 GiB image, its xz -6 stream and the signed payloads that
// signing/payload's BenchmarkApply caches (its helper is not exported, so the files are
// shared instead).
const benchDir = "../../build/bench/payload-bench-v1"

const childEnv = "SWITCHYARD_BENCH_UPDATE_ENGINE_ARGS"

// TestBenchDaemonChild is update-engine in a child process of the benchmark, so that its
// peak RSS is its own. It does nothing unless the benchmark starts it.
func TestBenchDaemonChild(t *testing.T) {
	raw := os.Getenv(childEnv)
	if raw == "" {
		t.Skip("run by BenchmarkUpdate only")
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		t.Fatal(err)
	}
	if p := os.Getenv("SWITCHYARD_BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "updated to") {
		t.Fatalf("no update applied: %s\n%s", out.String(), errOut.String())
	}
	// The daemon's own peak RSS (VmHWM), apart from the xz-utils children it ran.
	if st, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(st), "\n") {
			if strings.HasPrefix(l, "VmHWM:") {
				fmt.Println("BENCH_" + strings.Join(strings.Fields(l), " "))
			}
		}
	}
}

// BenchmarkUpdate times the daemon's whole update of a 1 GiB USR image over loopback HTTPS
// (Omaha check, TUF refresh, download, signature and hash checks, parallel decompression,
// writes, fsync, final hash, GPT flip) against `curl -sk URL | xz -dc | dd of=… conv=fsync`
// of the same image as one xz stream, in the same run. It reports the speedup
// (baseline time / daemon time) and the daemon's peak RSS.
func BenchmarkUpdate(b *testing.B) {
	if testing.Short() {
		b.Skip("1 GiB end-to-end benchmark")
	}
	for _, tool := range []string{"curl", "xz", "dd", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("SKIPPING BenchmarkUpdate: %s is missing (apt-get install curl xz-utils coreutils)", tool)
		}
	}
	payloadFile := filepath.Join(benchDir, "payload-xz-nocheck.bin")
	for _, f := range []string{payloadFile, filepath.Join(benchDir, "payload.pub.pem"), filepath.Join(benchDir, "usr.img.xz")} {
		if _, err := os.Stat(f); err != nil {
			b.Skipf("SKIPPING BenchmarkUpdate: %s is missing; make it with `go test -run '^$' -bench BenchmarkApply ./signing/payload` (cached in build/bench)", f)
		}
	}
	w := newWorld(b, worldOptions{usrSize: 1 << 30, prebuilt: payloadFile, prebuiltKey: filepath.Join(benchDir, "payload.pub.pem"),
		files: map[string]string{"/bench/usr.img.xz": filepath.Join(benchDir, "usr.img.xz")}})
	baselineOut := filepath.Join(w.dir, "baseline.img")
	conf := w.conf("0.0.1", "USR-A")

	var daemonTime, baseTime time.Duration
	// The child reports its own VmHWM: wait4's ru_maxrss would also count the xz-utils
	// processes it ran and, through exec, the benchmark process's own high-water mark.
	var peakRSS int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// A fresh host: USR-B unbootable again, no state.
		os.RemoveAll(filepath.Join(w.dir, "state"))
		sizes := layout.Small()
		sizes.USR = 1 << 30
		if err := layout.WriteFile(context.Background(), w.diskPath, layout.Options{Sizes: sizes}, nil); err != nil {
			b.Fatal(err)
		}
		os.Remove(baselineOut)
		b.StartTimer()

		// The daemon, in a child process.
		args, _ := json.Marshal([]string{"-config", conf, "-once", "-log-level", "warn"})
		cmd := exec.Command(os.Args[0], "-test.run=^TestBenchDaemonChild$", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"="+string(args))
		start := time.Now()
		out, err := cmd.CombinedOutput()
		d := time.Since(start)
		if err != nil {
			b.Fatalf("update-engine: %v\n%s", err, out)
		}
		daemonTime += d
		if testing.Verbose() {
			o := string(out)
			b.Logf("update-engine child output (tail):\n%s", o[max(0, len(o)-4000):])
		}
		var kb int64
		if i := strings.Index(string(out), "BENCH_VmHWM: "); i >= 0 {
			fmt.Sscanf(string(out[i:]), "BENCH_VmHWM: %d kB", &kb)
		}
		if kb == 0 {
			b.Fatalf("the child did not report its peak RSS:\n%s", out)
		}
		peakRSS = max(peakRSS, kb*1024)

		// The baseline.
		sh := fmt.Sprintf("curl -sk %s/bench/usr.img.xz | xz -dc | dd of=%s bs=1M conv=fsync status=none", w.srv.URL, baselineOut)
		start = time.Now()
		if out, err := exec.Command("sh", "-c", sh).CombinedOutput(); err != nil {
			b.Fatalf("baseline: %v\n%s", err, out)
		}
		baseTime += time.Since(start)
	}
	b.StopTimer()
	if got := w.partitionB(); len(got) != 1<<30 {
		b.Fatalf("USR-B has %d bytes", len(got))
	}
	if s := w.slot(layout.NumUSRB); s.Tries != 1 || s.Priority != 2 {
		b.Fatalf("USR-B not flipped: %+v", s)
	}
	n := float64(b.N)
	b.ReportMetric(daemonTime.Seconds()/n, "daemon_s/op")
	b.ReportMetric(baseTime.Seconds()/n, "curl_xz_dd_s/op")
	b.ReportMetric(baseTime.Seconds()/daemonTime.Seconds(), "speedup")
	b.ReportMetric(float64(peakRSS)/(1<<20), "peak_rss_MiB")
}

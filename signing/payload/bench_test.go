package payload

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/signing/keys"
)

// benchVersion keys the cached benchmark inputs under build/bench/ at the repository root;
// bump it when the image recipe or the payload format changes.
const benchVersion = "payload-bench-v1"

const benchImageSize = 1 << 30

// benchInputs are the cached files of the apply benchmark.
type benchInputs struct {
	dir, image, imageXZ, payloadXZ, payloadZstd, pub string
}

// prepareBench makes (once) a 1 GiB ext4 image filled with real files from /usr/lib and
// /usr/share, its xz -6 single-stream compression (the baseline input), and signed xz and
// zstd payloads of it.
func prepareBench(b *testing.B) benchInputs {
	b.Helper()
	for _, tool := range []string{"mkfs.ext4", "xz", "dd"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("SKIPPING the payload benchmark: %s is missing (apt-get install e2fsprogs xz-utils coreutils)", tool)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		b.Fatal(err)
	}
	in := benchInputs{dir: filepath.Join(root, "build", "bench", benchVersion)}
	in.image = filepath.Join(in.dir, "usr.img")
	in.imageXZ = in.image + ".xz"
	in.payloadXZ = filepath.Join(in.dir, "payload-xz-nocheck.bin")
	in.payloadZstd = filepath.Join(in.dir, "payload-zstd.bin")
	in.pub = filepath.Join(in.dir, "payload.pub.pem")
	if err := os.MkdirAll(in.dir, 0o755); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if !exists(in.image) {
		b.Logf("making %s (cached)", in.image)
		if err := makeBenchImage(in.dir, in.image); err != nil {
			b.Fatal(err)
		}
	}
	if !exists(in.imageXZ) {
		b.Logf("compressing the baseline %s with xz -6 -T1 (minutes; cached)", in.imageXZ)
		tmp := in.imageXZ + ".tmp"
		if out, err := exec.Command("sh", "-c", fmt.Sprintf("xz -6 -T1 -k -c %q > %q", in.image, tmp)).CombinedOutput(); err != nil {
			b.Fatalf("xz: %v\n%s", err, out)
		}
		if err := os.Rename(tmp, in.imageXZ); err != nil {
			b.Fatal(err)
		}
	}
	var signer keys.Signer
	if !exists(in.payloadXZ) || !exists(in.payloadZstd) {
		k, err := keys.Generate(keys.Ed25519)
		if err != nil {
			b.Fatal(err)
		}
		if err := k.Public().Save(in.pub); err != nil {
			b.Fatal(err)
		}
		signer, err = keys.NewSigner(k)
		if err != nil {
			b.Fatal(err)
		}
		os.Remove(in.payloadXZ)
		os.Remove(in.payloadZstd)
	}
	xzPath, _ := exec.LookPath("xz")
	for _, p := range []struct {
		path string
		cfg  BuildConfig
	}{
		{in.payloadXZ, BuildConfig{Compression: ReplaceXZ, XZCommand: xzPath}},
		{in.payloadZstd, BuildConfig{Compression: ReplaceZstd}},
	} {
		if exists(p.path) {
			continue
		}
		b.Logf("building %s (minutes; cached)", p.path)
		p.cfg.Version, p.cfg.Board, p.cfg.TempDir = "1.0.0", "amd64-usr", in.dir
		img, err := os.Open(in.image)
		if err != nil {
			b.Fatal(err)
		}
		tmp := p.path + ".tmp"
		out, err := os.Create(tmp)
		if err != nil {
			b.Fatal(err)
		}
		bw := bufio.NewWriterSize(out, 1<<20)
		if _, err := Build(ctx, img, benchImageSize, bw, p.cfg); err != nil {
			b.Fatal(err)
		}
		img.Close()
		if err := bw.Flush(); err != nil {
			b.Fatal(err)
		}
		out.Close()
		if err := SignFile(ctx, tmp, signer); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(tmp, p.path); err != nil {
			b.Fatal(err)
		}
	}
	return in
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// makeBenchImage copies about 900 MiB of regular files from /usr/lib and /usr/share into a
// staging directory and makes a 1 GiB ext4 image of it with mkfs.ext4 -d.
func makeBenchImage(dir, image string) error {
	stage := filepath.Join(dir, "stage")
	os.RemoveAll(stage)
	defer os.RemoveAll(stage)
	var files []string
	for _, top := range []string{"/usr/lib", "/usr/share"} {
		filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
	}
	sort.Strings(files)
	var total int64
	const budget = 900 << 20
	for _, p := range files {
		if total >= budget {
			break
		}
		st, err := os.Stat(p)
		if err != nil || st.Size() > 64<<20 || total+st.Size() > budget {
			continue
		}
		dst := filepath.Join(stage, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return err
		}
		total += st.Size()
	}
	tmp := image + ".tmp"
	os.Remove(tmp)
	if err := exec.Command("truncate", "-s", strconv.Itoa(benchImageSize), tmp).Run(); err != nil {
		return err
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-b", "4096", "-E", "root_owner=0:0", "-d", stage, tmp).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4: %v\n%s", err, out)
	}
	return os.Rename(tmp, image)
}

// childResult is what the apply child process reports.
type childResult struct {
	Seconds float64
	VmHWMKB int64
	Err     string
}

// TestBenchApplyChild is the apply benchmark's child process: it applies one payload to
// an image file with fsync and reports the time and its peak RSS (VmHWM). It runs only when
// the benchmark starts it.
func TestBenchApplyChild(t *testing.T) {
	spec := os.Getenv("SWITCHYARD_PAYLOAD_BENCH_CHILD")
	if spec == "" {
		t.Skip("run by BenchmarkApply")
	}
	var args struct{ Payload, Pub, Target, XZCommand string }
	if err := json.Unmarshal([]byte(spec), &args); err != nil {
		t.Fatal(err)
	}
	res := childResult{}
	start := time.Now()
	err := func() error {
		v, err := keys.LoadVerifier(args.Pub)
		if err != nil {
			return err
		}
		f, err := os.Open(args.Payload)
		if err != nil {
			return err
		}
		defer f.Close()
		tf, err := os.OpenFile(args.Target, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		defer tf.Close()
		if err := tf.Truncate(benchImageSize); err != nil {
			return err
		}
		_, err = Apply(context.Background(), bufio.NewReaderSize(f, 1<<20), v, ApplyConfig{Target: tf, Sync: tf.Sync, XZCommand: args.XZCommand})
		return err
	}()
	res.Seconds = time.Since(start).Seconds()
	if err != nil {
		res.Err = err.Error()
	}
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			res.VmHWMKB, _ = strconv.ParseInt(strings.Fields(line)[1], 10, 64)
		}
	}
	out, _ := json.Marshal(res)
	fmt.Printf("BENCHCHILD %s\n", out)
}

func runApplyChild(b *testing.B, payload, pub, target, xzCommand string, env ...string) childResult {
	b.Helper()
	spec, _ := json.Marshal(map[string]string{"Payload": payload, "Pub": pub, "Target": target, "XZCommand": xzCommand})
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchApplyChild$", "-test.count=1", "-test.v")
	cmd.Env = append(append(os.Environ(), "SWITCHYARD_PAYLOAD_BENCH_CHILD="+string(spec)), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("apply child: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "BENCHCHILD "); ok {
			var r childResult
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				b.Fatal(err)
			}
			if r.Err != "" {
				b.Fatalf("apply child: %s", r.Err)
			}
			return r
		}
	}
	b.Fatalf("apply child printed no result:\n%s", out)
	return childResult{}
}

// BenchmarkApply applies 1 GiB image payloads (xz and zstd) from a local file to an image
// file with fsync, each in a child process that reports its peak RSS (xz twice: decoded by
// github.com/xi2/xz in-process, "xz-go", and by xz-utils per chunk, "xz-liblzma", which is
// what update-engine and syctl use by default when xz is installed), and measures in the
// same run the baseline `xz -dc usr.img.xz | dd of=... bs=1M conv=fsync` (one xz stream,
// xz-utils, one thread), once before and once after the appliers. Reported: throughput
// ratios against the baseline's mean, peak RSS, and
// the size of the chunked xz payload against one xz -6 stream.
func BenchmarkApply(b *testing.B) {
	if testing.Short() {
		b.Skip("the payload benchmark needs minutes and a 1 GiB image; not in -short mode")
	}
	in := prepareBench(b)
	target := filepath.Join(in.dir, "target.img")
	defer os.Remove(target)
	size := func(p string) float64 {
		st, err := os.Stat(p)
		if err != nil {
			b.Fatal(err)
		}
		return float64(st.Size())
	}
	b.SetBytes(benchImageSize)
	xzPath, _ := exec.LookPath("xz")
	var base, xzT, xzuT, zstdT float64
	var rssXZ, rssXZU, rssZstd, rssXZLimit int64
	// baseline runs `xz -dc | dd conv=fsync` once and returns its seconds.
	baseline := func() float64 {
		os.Remove(target)
		start := time.Now()
		if out, err := exec.Command("sh", "-c", fmt.Sprintf("xz -dc %q | dd of=%q bs=1M conv=fsync status=none", in.imageXZ, target)).CombinedOutput(); err != nil {
			b.Fatalf("baseline: %v\n%s", err, out)
		}
		return time.Since(start).Seconds()
	}
	for b.Loop() {
		base += baseline() / 2
		r := runApplyChild(b, in.payloadXZ, in.pub, target, "")
		xzT += r.Seconds
		rssXZ = max(rssXZ, r.VmHWMKB)
		// The same with the soft memory limit the host daemon runs under.
		r = runApplyChild(b, in.payloadXZ, in.pub, target, "", "GOMEMLIMIT=96MiB")
		rssXZLimit = max(rssXZLimit, r.VmHWMKB)
		r = runApplyChild(b, in.payloadXZ, in.pub, target, xzPath)
		xzuT += r.Seconds
		rssXZU = max(rssXZU, r.VmHWMKB)
		r = runApplyChild(b, in.payloadZstd, in.pub, target, "")
		zstdT += r.Seconds
		rssZstd = max(rssZstd, r.VmHWMKB)
		// The baseline again, after the appliers: the ratios are against the mean of both
		// runs, so a drift of a shared machine's speed moves both sides alike.
		base += baseline() / 2
	}
	n := float64(b.N)
	mb := float64(benchImageSize) / 1e6
	b.ReportMetric(mb/(base/n), "baseline-MB/s")
	b.ReportMetric(mb/(xzT/n), "xz-go-MB/s")
	b.ReportMetric(mb/(zstdT/n), "zstd-MB/s")
	b.ReportMetric(mb/(xzuT/n), "xz-liblzma-MB/s")
	b.ReportMetric(base/xzT, "xz-go-speedup-x")
	b.ReportMetric(base/xzuT, "xz-liblzma-speedup-x")
	// The applier's own peak; each worker's xz -d adds what `xz --list -vv` reports as the
	// memory needed (9 MiB for xz -6's 8 MiB dictionary). getrusage cannot say: a child
	// counts the parent's pages it shares until it execs.
	b.ReportMetric(float64(rssXZU)/1024, "xz-liblzma-peakRSS-MiB")
	b.ReportMetric(float64(rssXZLimit)/1024, "xz-go-peakRSS-GOMEMLIMIT96-MiB")
	b.ReportMetric(base/zstdT, "zstd-speedup-x")
	b.ReportMetric(float64(rssXZ)/1024, "xz-go-peakRSS-MiB")
	b.ReportMetric(float64(rssZstd)/1024, "zstd-peakRSS-MiB")
	b.ReportMetric(100*size(in.payloadXZ)/size(in.imageXZ), "xz-size-%-of-xz6")
	b.ReportMetric(100*size(in.payloadZstd)/size(in.imageXZ), "zstd-size-%-of-xz6")
	b.Logf("GOMAXPROCS %d; inputs cached in %s", runtime.GOMAXPROCS(0), in.dir)
}

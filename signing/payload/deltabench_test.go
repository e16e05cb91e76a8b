package payload

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// deltaBenchDir holds the image pairs scripts/deltabench.sh makes from Debian packages.
var deltaBenchDir = filepath.Join("..", "..", "build", "deltabench")

// BenchmarkDebianPairs compares, in one run and on the same image pairs (a userland point
// release and a kernel update made from real Debian packages by scripts/deltabench.sh), the
// bytes and apply time of the full payload, our delta, xdelta3 -9, zstd -19 --long=30
// --patch-from and casync chunk reuse, and the build time of the full payload and the
// delta. Run it with make bench (one iteration: -benchtime=1x); the table goes to the log
// and to build/deltabench/results.md.
func BenchmarkDebianPairs(b *testing.B) {
	for _, pair := range []string{"userland", "kernel"} {
		b.Run(pair, func(b *testing.B) {
			oldPath := filepath.Join(deltaBenchDir, pair+"-old.img")
			newPath := filepath.Join(deltaBenchDir, pair+"-new.img")
			if !exists(oldPath) || !exists(newPath) {
				b.Skipf("SKIPPING: no %s image pair in %s: run scripts/deltabench.sh (make bench does)", pair, deltaBenchDir)
			}
			for i := 0; i < b.N; i++ {
				rows := benchPair(b, oldPath, newPath)
				var tbl strings.Builder
				fmt.Fprintf(&tbl, "| %s pair | bytes | of full | build s | apply s |\n|---|---:|---:|---:|---:|\n", pair)
				full := rows[0].bytes
				for _, r := range rows {
					build := "–"
					if r.build > 0 {
						build = fmt.Sprintf("%.1f", r.build.Seconds())
					}
					fmt.Fprintf(&tbl, "| %s | %d | %.2f%% | %s | %.1f |\n", r.name, r.bytes, 100*float64(r.bytes)/float64(full), build, r.apply.Seconds())
					b.ReportMetric(float64(r.bytes), r.metric+"-bytes")
					b.ReportMetric(r.apply.Seconds(), r.metric+"-apply-s")
				}
				b.ReportMetric(float64(rows[1].bytes)/float64(full), "delta/full")
				b.ReportMetric(rows[1].build.Seconds()/rows[0].build.Seconds(), "delta-build/full-build")
				b.ReportMetric(rows[1].apply.Seconds()/rows[0].apply.Seconds(), "delta-apply/full-apply")
				b.Log("\n" + tbl.String())
				f, err := os.OpenFile(filepath.Join(deltaBenchDir, "results.md"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
				if err == nil {
					fmt.Fprintf(f, "%s\n%s\n", time.Now().UTC().Format(time.RFC3339), tbl.String())
					f.Close()
				}
			}
		})
	}
}

type benchRow struct {
	name, metric string
	bytes        int64
	build, apply time.Duration
}

func benchPair(b *testing.B, oldPath, newPath string) []benchRow {
	ctx := context.Background()
	dir := b.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	k := getKeys(b)
	oldImg, err := os.Open(oldPath)
	if err != nil {
		b.Fatal(err)
	}
	defer oldImg.Close()
	ost, _ := oldImg.Stat()
	newImg, err := os.Open(newPath)
	if err != nil {
		b.Fatal(err)
	}
	defer newImg.Close()
	nst, _ := newImg.Stat()
	xzCommand, _ := XZDecoderCommand("auto") // as syctl and update-engine do

	// ours builds and signs a payload, then applies it to a new file, timing both.
	ours := func(name, metric string, cfg BuildConfig) benchRow {
		cfg.Version, cfg.Board, cfg.TempDir, cfg.XZCommand = "2", "amd64-usr", dir, xzCommand
		path := p(metric + ".bin")
		out, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		w := bufio.NewWriterSize(out, 1<<20)
		if _, err := Build(ctx, newImg, nst.Size(), w, cfg); err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		out.Close()
		build := time.Since(start)
		if err := SignFile(ctx, path, k.signer); err != nil {
			b.Fatal(err)
		}
		st, _ := os.Stat(path)
		target, err := os.Create(p(metric + ".img"))
		if err != nil {
			b.Fatal(err)
		}
		defer target.Close()
		in, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer in.Close()
		start = time.Now()
		acfg := ApplyConfig{Target: target, Sync: target.Sync, XZCommand: xzCommand}
		if cfg.Source != nil {
			acfg.Source = oldImg
		}
		if _, err := Apply(ctx, bufio.NewReaderSize(in, 1<<20), k.verifier, acfg); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		apply := time.Since(start)
		os.Remove(target.Name())
		return benchRow{name: name, metric: metric, bytes: st.Size(), build: build, apply: apply}
	}
	rows := []benchRow{
		ours("full payload (xz, 16 MiB chunks)", "full", BuildConfig{}),
		ours("delta (SOURCE_COPY + SOURCE_ZSTD)", "delta", BuildConfig{Source: oldImg, SourceSize: ost.Size(), SourceVersion: "1"}),
	}

	// tool runs a command, failing the benchmark when it fails.
	tool := func(name string, args ...string) time.Duration {
		cmd := exec.CommandContext(ctx, name, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.Stdout = io.Discard
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.Bytes())
		}
		return time.Since(start)
	}
	size := func(path string) int64 {
		st, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		return st.Size()
	}
	// same checks that a tool's result is the new image.
	same := func(path string) {
		if err := exec.Command("cmp", "-s", path, newPath).Run(); err != nil {
			b.Fatalf("%s differs from %s", path, newPath)
		}
		os.Remove(path)
	}
	missing := func(name, deb string) bool {
		if _, err := exec.LookPath(name); err != nil {
			b.Logf("SKIPPING %s: not installed (apt-get install %s; make bench does)", name, deb)
			return true
		}
		return false
	}
	if !missing("xdelta3", "xdelta3") {
		build := tool("xdelta3", "-9", "-e", "-f", "-s", oldPath, newPath, p("x.vcdiff"))
		apply := tool("xdelta3", "-d", "-f", "-s", oldPath, p("x.vcdiff"), p("x.img"))
		same(p("x.img"))
		rows = append(rows, benchRow{"xdelta3 -9 -e -s", "xdelta3", size(p("x.vcdiff")), build, apply})
	}
	if !missing("zstd", "zstd") {
		build := tool("zstd", "-q", "-f", "-19", "--long=30", "--patch-from="+oldPath, newPath, "-o", p("z.zst"))
		apply := tool("zstd", "-q", "-f", "-d", "--long=30", "--patch-from="+oldPath, p("z.zst"), "-o", p("z.img"))
		same(p("z.img"))
		rows = append(rows, benchRow{"zstd -19 --long=30 --patch-from", "zstd", size(p("z.zst")), build, apply})
	}
	if !missing("casync", "casync") {
		// The host holds the old image's chunks (its seed); it downloads the new index and
		// the chunks of the new store that the old store lacks.
		tool("casync", "make", "--store="+p("old.castr"), p("old.caibx"), oldPath)
		build := tool("casync", "make", "--store="+p("new.castr"), p("new.caibx"), newPath)
		have := map[string]bool{}
		filepath.Walk(p("old.castr"), func(path string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				have[info.Name()] = true
			}
			return nil
		})
		fetch := size(p("new.caibx"))
		filepath.Walk(p("new.castr"), func(path string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() && !have[info.Name()] {
				fetch += info.Size()
			}
			return nil
		})
		apply := tool("casync", "extract", "--store="+p("new.castr"), "--seed="+oldPath, p("new.caibx"), p("c.img"))
		same(p("c.img"))
		rows = append(rows, benchRow{"casync (new chunks + index)", "casync", fetch, build, apply})
	}
	return rows
}

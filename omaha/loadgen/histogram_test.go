package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestLogGrowth(t *testing.T) {
	if d := math.Abs(math.Log(histGrowth) - logGrowth); d > 1e-15 {
		t.Fatalf("logGrowth off by %g", d)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		gen  func() time.Duration
	}{
		{"uniform 1µs-10ms", func() time.Duration { return time.Duration(1000 + rng.Int64N(10_000_000)) }},
		{"exponential mean 2ms", func() time.Duration { return time.Duration(rng.ExpFloat64() * 2e6) }},
		{"bimodal", func() time.Duration {
			if rng.IntN(100) < 95 {
				return time.Duration(200_000 + rng.Int64N(100_000))
			}
			return time.Duration(50_000_000 + rng.Int64N(10_000_000))
		}},
		{"sub-microsecond", func() time.Duration { return time.Duration(rng.Int64N(1000)) }},
		{"beyond the top bucket", func() time.Duration { return 10*time.Minute + time.Duration(rng.Int64N(1e9)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHistogram()
			samples := make([]time.Duration, 20000)
			var sum time.Duration
			for i := range samples {
				samples[i] = tt.gen()
				sum += samples[i]
				h.Record(samples[i])
			}
			slices.Sort(samples)
			if h.Count() != uint64(len(samples)) || h.Min() != samples[0] || h.Max() != samples[len(samples)-1] {
				t.Fatalf("count/min/max = %d %v %v", h.Count(), h.Min(), h.Max())
			}
			if h.Mean() != sum/time.Duration(len(samples)) {
				t.Errorf("mean = %v", h.Mean())
			}
			for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
				exact := samples[int(math.Ceil(q*float64(len(samples))))-1]
				got := h.Quantile(q)
				// Within one bucket (2 %), or 1 µs for the bottom bucket; above the top
				// bucket only the exact max bounds it.
				tol := math.Max(0.021*float64(exact), float64(time.Microsecond))
				if exact > 100*time.Second {
					if got < samples[0] || got > samples[len(samples)-1] {
						t.Errorf("q%.3f = %v outside [min,max]", q, got)
					}
					continue
				}
				if math.Abs(float64(got-exact)) > tol {
					t.Errorf("q%.3f = %v, exact %v", q, got, exact)
				}
			}
			if h.Quantile(0) != h.Min() || h.Quantile(1) != h.Max() {
				t.Errorf("q0/q1 are not min/max")
			}
		})
	}
}

func TestHistogramMerge(t *testing.T) {
	a, b, all := NewHistogram(), NewHistogram(), NewHistogram()
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * 37 * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(b)
	a.Merge(NewHistogram())
	for _, q := range []float64{0, 0.25, 0.5, 0.99, 1} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("merged q%v = %v, want %v", q, a.Quantile(q), all.Quantile(q))
		}
	}
	if a.Count() != all.Count() || a.Mean() != all.Mean() || a.Min() != all.Min() || a.Max() != all.Max() {
		t.Errorf("merged summary differs")
	}
	empty := NewHistogram()
	if empty.Quantile(0.5) != 0 || empty.Mean() != 0 {
		t.Errorf("empty histogram not zero")
	}
	empty.Merge(a)
	if empty.Min() != a.Min() {
		t.Errorf("merge into empty lost min")
	}
}

func TestHistogramFixedMemory(t *testing.T) {
	h := NewHistogram()
	before := len(h.counts)
	for i := 0; i < 100000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	if len(h.counts) != before {
		t.Fatalf("histogram grew from %d to %d buckets", before, len(h.counts))
	}
}

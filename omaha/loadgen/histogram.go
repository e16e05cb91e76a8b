package loadgen

import (
	"math"
	"time"
)

// Histogram records durations in logarithmic buckets: each bucket is histGrowth (2 %) wider
// than the one below, from histMin (1 µs) up; anything at or above the top bucket lands in it.
// A quantile is reported as the geometric middle of its bucket, so it is within about 1 % of
// the true sample. Memory is fixed (about 8 KiB) whatever the number of samples. The zero
// value is not ready: use NewHistogram. A Histogram is not safe for concurrent use; give each
// goroutine its own and Merge them.
type Histogram struct {
	counts []uint64
	n      uint64
	sum    time.Duration
	min    time.Duration
	max    time.Duration
}

const (
	histMin    = time.Microsecond
	histGrowth = 1.02
	// histBuckets covers 1 µs to about 3 minutes (1.02^959 µs ≈ 177 s).
	histBuckets = 960
)

// logGrowth is ln(histGrowth); TestLogGrowth checks it.
const logGrowth = 0.01980262729617973

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, histBuckets)}
}

func bucketOf(d time.Duration) int {
	if d <= histMin {
		return 0
	}
	i := int(math.Log(float64(d)/float64(histMin))/logGrowth) + 1
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// bucketMid is the geometric middle of bucket i: bucket 0 holds everything up to histMin,
// bucket i > 0 holds (histMin·g^(i-1), histMin·g^i].
func bucketMid(i int) time.Duration {
	if i == 0 {
		return histMin
	}
	return time.Duration(float64(histMin) * math.Pow(histGrowth, float64(i)-0.5))
}

// Record adds one sample.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(d)]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

// Merge adds every sample of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of samples.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest sample, exactly.
func (h *Histogram) Max() time.Duration { return h.max }

// Min is the smallest sample, exactly.
func (h *Histogram) Min() time.Duration { return h.min }

// Mean is the average sample, exactly.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile returns the q-quantile (0 ≤ q ≤ 1) to within the bucket precision, clamped to the
// exact minimum and maximum; 0 when there are no samples.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	switch {
	case q <= 0:
		return h.min
	case q >= 1:
		return h.max
	}
	// The rank of the sample wanted, 1-based: the smallest r with r ≥ q·n.
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			d := bucketMid(i)
			if d < h.min {
				d = h.min
			}
			if d > h.max {
				d = h.max
			}
			return d
		}
	}
	return h.max
}

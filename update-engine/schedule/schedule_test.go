package schedule

import (
	"math/rand/v2"
	"testing"
	"time"
)

func flatcar() Policy {
	return Policy{
		FirstDelay: 7 * time.Minute, FirstFuzz: 10 * time.Minute,
		Interval: 45 * time.Minute, Fuzz: 10 * time.Minute,
		MaxBackoff: 4 * time.Hour, MinPoll: 5 * time.Minute, MaxPoll: 24 * time.Hour,
	}
}

func TestBounds(t *testing.T) {
	p := flatcar()
	tests := []struct {
		name     string
		delay    func(*rand.Rand) time.Duration
		min, max time.Duration
	}{
		{"first", p.First, 2 * time.Minute, 12 * time.Minute},
		{"interval", func(r *rand.Rand) time.Duration { return p.Next(r, 0, 0) }, 40 * time.Minute, 50 * time.Minute},
		{"one failure", func(r *rand.Rand) time.Duration { return p.Next(r, 1, 0) }, 67*time.Minute + 30*time.Second, 112*time.Minute + 30*time.Second},
		{"many failures capped", func(r *rand.Rand) time.Duration { return p.Next(r, 40, 0) }, 3 * time.Hour, 4 * time.Hour},
		{"poll interval", func(r *rand.Rand) time.Duration { return p.Next(r, 0, 2*time.Hour) }, 90 * time.Minute, 150 * time.Minute},
		{"poll interval too small", func(r *rand.Rand) time.Duration { return p.Next(r, 0, time.Second) }, 5 * time.Minute, 6*time.Minute + 15*time.Second},
		{"poll interval too large", func(r *rand.Rand) time.Duration { return p.Next(r, 0, 1000*time.Hour) }, 18 * time.Hour, 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(1, 2))
			lo, hi := time.Duration(1<<62), time.Duration(0)
			for i := 0; i < 5000; i++ {
				d := tt.delay(rnd)
				if d < tt.min || d > tt.max {
					t.Fatalf("delay %v outside [%v, %v]", d, tt.min, tt.max)
				}
				lo, hi = min(lo, d), max(hi, d)
			}
			// The jitter really spreads the checks over most of the range.
			if spread := hi - lo; spread < (tt.max-tt.min)/2 {
				t.Errorf("delays span only %v..%v", lo, hi)
			}
		})
	}
}

func TestBackoffGrows(t *testing.T) {
	p := flatcar()
	p.Fuzz = 0
	rnd := rand.New(rand.NewPCG(3, 4))
	prevMax := time.Duration(0)
	for n := 0; n <= 5; n++ {
		var hi time.Duration
		for i := 0; i < 200; i++ {
			hi = max(hi, p.Next(rnd, n, 0))
		}
		if hi < prevMax && hi != p.MaxBackoff {
			t.Errorf("failures=%d: max delay %v below the previous %v", n, hi, prevMax)
		}
		prevMax = hi
	}
	if prevMax != p.MaxBackoff && prevMax < 3*time.Hour {
		t.Errorf("backoff after 5 failures tops at %v", prevMax)
	}
}

func TestFuzzZero(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	if d := Fuzz(rnd, time.Minute, 0); d != time.Minute {
		t.Errorf("Fuzz without range = %v", d)
	}
	if d := Fuzz(rnd, 0, 0); d != 0 {
		t.Errorf("Fuzz(0,0) = %v", d)
	}
	for i := 0; i < 100; i++ {
		if d := Fuzz(rnd, time.Second, time.Hour); d < 0 {
			t.Fatalf("negative delay %v", d)
		}
	}
}

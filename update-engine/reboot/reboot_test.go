package reboot

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type journal struct {
	mu  sync.Mutex
	evs []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	j.evs = append(j.evs, s)
	j.mu.Unlock()
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.evs...)
}

type lock struct{ j *journal }

func (l lock) Lock(context.Context) error   { l.j.add("lock"); return nil }
func (l lock) Unlock(context.Context) error { l.j.add("unlock"); return nil }

type rebooter struct{ j *journal }

func (r rebooter) Reboot(context.Context) error { r.j.add("reboot"); return nil }

type clock struct{ now time.Time }

func (c clock) Now() time.Time { return c.now }
func (c clock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- c.now.Add(d)
	return ch
}

func TestStrategies(t *testing.T) {
	thu := time.Date(2026, 6, 4, 23, 30, 0, 0, time.UTC) // a Thursday, inside "Thu 23:00 1h"
	tests := []struct {
		name     string
		opts     Options
		want     []string // journal after Reboot then Release
		wantErr  bool
		newError bool
	}{
		{name: "etcd-lock", opts: Options{Strategy: "etcd-lock", Windows: []string{"Thu 23:00 1h"}}, want: []string{"lock", "reboot", "unlock"}},
		{name: "reboot", opts: Options{Strategy: "reboot"}, want: []string{"reboot"}},
		{name: "off", opts: Options{Strategy: "off"}, want: nil},
		{name: "flatcar window", opts: Options{Strategy: "reboot", FlatcarStart: "Thu 23:00", FlatcarLength: time.Hour, Zone: time.UTC}, want: []string{"reboot"}},
		{name: "unknown strategy", opts: Options{Strategy: "sometimes"}, newError: true},
		{name: "bad window", opts: Options{Strategy: "reboot", Windows: []string{"Someday 25:00 1h"}}, newError: true},
		{name: "etcd-lock without a lock", opts: Options{Strategy: "etcd-lock"}, newError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := &journal{}
			o := tt.opts
			if o.Strategy == "etcd-lock" && tt.name != "etcd-lock without a lock" {
				o.Lock = lock{j}
			}
			o.Rebooter = rebooter{j}
			o.Clock = clock{thu}
			m, err := New(o)
			if tt.newError {
				if err == nil {
					t.Fatal("New accepted bad options")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			if err := m.Reboot(ctx); err != nil {
				t.Fatal(err)
			}
			if err := m.Release(ctx); err != nil {
				t.Fatal(err)
			}
			got := j.get()
			if len(got) != len(tt.want) {
				t.Fatalf("journal %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("journal %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestOutsideWindowWaits(t *testing.T) {
	j := &journal{}
	mon := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	m, err := New(Options{Strategy: "reboot", Windows: []string{"Thu 23:00 1h"}, Rebooter: rebooter{j}, Clock: blockingClock{mon}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := m.Reboot(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Reboot outside the window = %v", err)
	}
	if len(j.get()) != 0 {
		t.Errorf("rebooted outside the window: %v", j.get())
	}
}

// blockingClock never fires: time does not move.
type blockingClock struct{ now time.Time }

func (c blockingClock) Now() time.Time                       { return c.now }
func (c blockingClock) After(time.Duration) <-chan time.Time { return nil }

package dbusapi

import (
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/partitions/slots"
	"github.com/switchyard-os/switchyard/update-engine/engine"
	"github.com/switchyard-os/switchyard/update-engine/schedule"
	"github.com/switchyard-os/switchyard/update-engine/state"
)

// The real engine runs against these: an Omaha server that offers one update, TUF that
// vouches for it, an A/B table in memory and an installer that writes nothing.
var payloadSum = sha256.Sum256([]byte("payload"))

const payloadSize = 4 << 20

type offerServer struct{}

func (offerServer) Check(context.Context, bool, ...*omaha.Event) (*omaha.Offer, error) {
	return &omaha.Offer{Version: "4001.0.0", URLs: []string{"https://updates.example/"},
		Package: omaha.Package{Name: "update.sy", Size: payloadSize}, SHA256: payloadSum[:]}, nil
}
func (s offerServer) CheckFull(ctx context.Context, onDemand bool) (*omaha.Offer, error) {
	return s.Check(ctx, onDemand)
}
func (offerServer) Ping(context.Context) error                    { return nil }
func (offerServer) Report(context.Context, ...*omaha.Event) error { return nil }

type vouch struct{}

func (vouch) Lookup(context.Context, string, string, string) (engine.Target, error) {
	return engine.Target{Name: "update.sy", Length: payloadSize, SHA256: payloadSum[:], Version: "4001.0.0", Board: "amd64-usr"}, nil
}

type table struct{}

func (table) Slots(context.Context) (slots.Slot, slots.Slot, error) {
	return slots.Slot{Number: 3, Label: "USR-A", State: slots.State{Priority: 1, Successful: true}}, slots.Slot{Number: 4, Label: "USR-B"}, nil
}
func (table) Prepare(context.Context, int) error         { return nil }
func (table) Flip(context.Context, int) error            { return nil }
func (table) MarkGood(context.Context, int) error        { return nil }
func (table) Rollback(context.Context, int) (int, error) { return 4, nil }

// gatedInstaller reports half the payload, then waits for the test before finishing.
type gatedInstaller struct{ gate chan struct{} }

func (g gatedInstaller) Install(ctx context.Context, job *engine.Job) error {
	job.Progress(payloadSize/2, payloadSize)
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	job.Progress(payloadSize, payloadSize)
	job.Verifying()
	return nil
}

// TestLocksmithdSeesNeedReboot does what locksmithd does (LS updateengine/client.go): add
// a match for StatusUpdate, GetStatus at start, then wait for UPDATE_STATUS_UPDATED_NEED_REBOOT,
// while the real engine, asked by AttemptUpdate over the bus as update_engine_client would,
// checks, downloads and flips. ResetStatus then returns it to IDLE.
func TestLocksmithdSeesNeedReboot(t *testing.T) {
	addr := bus(t)
	gate := make(chan struct{})
	eng, err := engine.New(engine.Options{
		Server: offerServer{}, Trust: vouch{}, Boot: table{}, Installer: gatedInstaller{gate},
		Store: state.Store{Dir: t.TempDir()}, Rand: rand.New(rand.NewPCG(1, 2)),
		Policy: schedule.Policy{FirstDelay: 24 * time.Hour, Interval: 24 * time.Hour, MaxBackoff: 24 * time.Hour,
			MinPoll: time.Hour, MaxPoll: 24 * time.Hour},
		Version: "4000.0.0", Board: "amd64-usr", BootID: "boot-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- eng.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("engine: %v", err)
		}
	}()
	// Run's first act is reading the state; the service is started once the engine has
	// published its start (Seq 1), so GetStatus below sees the engine, not its zero value.
	if _, err := eng.Wait(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	serve(t, addr, eng)

	// locksmithd.
	ls := connect(t, addr)
	signals := make(chan *dbus.Signal, 64)
	ls.Signal(signals)
	if err := ls.AddMatchSignal(dbus.WithMatchInterface(Interface), dbus.WithMatchMember("StatusUpdate"), dbus.WithMatchObjectPath(Path)); err != nil {
		t.Fatal(err)
	}
	obj := ls.Object(Name, Path)
	var st Status
	if err := obj.Call(Interface+".GetStatus", 0).Store(&st.LastCheckedTime, &st.Progress, &st.CurrentOperation, &st.NewVersion, &st.NewSize); err != nil {
		t.Fatal(err)
	}
	if st.CurrentOperation != string(engine.StatusIdle) || st.NewVersion != NoVersion {
		t.Fatalf("GetStatus at start = %+v", st)
	}

	// update_engine_client -check_for_update, on its own connection.
	if err := connect(t, addr).Object(Name, Path).Call(Interface+".AttemptUpdate", 0).Err; err != nil {
		t.Fatal(err)
	}
	next := func() Status {
		t.Helper()
		for {
			select {
			case sig := <-signals:
				if sig.Name == "org.freedesktop.DBus.NameAcquired" {
					continue // the bus greets every connection
				}
				if sig.Name != StatusSignal || sig.Path != Path || len(sig.Body) != 5 {
					t.Fatalf("signal %s %s %v", sig.Name, sig.Path, sig.Body)
				}
				var s Status
				if err := dbus.Store(sig.Body, &s.LastCheckedTime, &s.Progress, &s.CurrentOperation, &s.NewVersion, &s.NewSize); err != nil {
					t.Fatal(err)
				}
				return s
			case <-time.After(30 * time.Second): // a bound on failure, not a wait for success
				t.Fatal("no StatusUpdate within 30s")
			}
		}
	}
	// The installer holds the update in DOWNLOADING until the subscriber has seen it.
	for s := next(); s.CurrentOperation != string(engine.StatusDownloading); s = next() {
	}
	close(gate)
	var last Status
	for last = next(); last.CurrentOperation != string(engine.StatusUpdatedNeedReboot); last = next() {
		if last.CurrentOperation == string(engine.StatusIdle) || last.CurrentOperation == string(engine.StatusReportingErrorEvent) {
			t.Fatalf("the update failed: %+v (%s)", last, eng.Snapshot().LastError)
		}
	}
	if last.NewVersion != "4001.0.0" || last.NewSize != payloadSize || last.Progress != 1 || last.LastCheckedTime == 0 {
		t.Errorf("UPDATED_NEED_REBOOT signal = %+v", last)
	}

	// ResetStatus over the bus, as update_engine_client -reset_status.
	if err := obj.Call(Interface+".ResetStatus", 0).Err; err != nil {
		t.Fatal(err)
	}
	if s := next(); s.CurrentOperation != string(engine.StatusIdle) || s.NewVersion != NoVersion {
		t.Errorf("after ResetStatus: %+v", s)
	}
}

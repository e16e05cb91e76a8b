package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/partitions/gpt"
	"github.com/switchyard-os/switchyard/partitions/slots"
	"github.com/switchyard-os/switchyard/testimages/image"
	"github.com/switchyard-os/switchyard/testimages/qemu"
	"github.com/switchyard-os/switchyard/testimages/vmtest"
)

// Paths of the trust anchors and settings every release of the test image carries on USR.
const (
	imageConf  = "/usr/share/switchyard/e2e.conf"
	caFile     = "/usr/share/switchyard/ca.pem"
	tufRoot    = "/usr/share/switchyard/tuf-root.json"
	payloadKey = "/usr/share/switchyard/payload-keys"
	// serverURL is the Omaha endpoint as the guest sees it (guestfwd 10.0.2.100:443).
	serverURL = "https://" + guestName + "/v1/update/"
)

// The daemon's configuration files, in order: the release, the image's settings, the
// machine's update.conf (from the kernel command line).
var engineService = "/usr/bin/update-engine -config /usr/share/flatcar/release -config " + imageConf + " -config /etc/switchyard/update.conf"

// releaseOpts are how one release of the test image differs from another.
type releaseOpts struct {
	// broken makes /usr/bin/app-check fail: the release boots, its health check does not pass.
	broken bool
	// data, when set, is shipped as /usr/share/switchyard/release-data.bin: bytes that
	// differ from release to release, so a delta has something to carry.
	data []byte
}

// guestOS is the test OS of a release: update-engine as its service, with the world's trust
// anchors and the image's settings.
func (w *world) guestOS(ctx context.Context, env *vmtest.Env, version string, o releaseOpts) image.OS {
	t := w.t
	t.Helper()
	ue, err := env.Builder.GoBinary(ctx, "./cmd/update-engine")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(ue)
	if err != nil {
		t.Fatal(err)
	}
	check := "#!/usr/bin/busybox sh\necho \"app-check: version " + version + " serves\"\nexit 0\n"
	if o.broken {
		check = "#!/usr/bin/busybox sh\necho \"app-check: version " + version + " does not come up\" >&2\nexit 1\n"
	}
	conf := strings.Join([]string{
		"# settings of the e2e test image",
		"SERVER_CA=" + caFile,
		"TUF_ROOT=" + tufRoot,
		"PAYLOAD_KEYS=" + payloadKey,
		"DISK=/dev/vda",
		"REBOOT_COMMAND=/usr/bin/busybox reboot",
		"HEALTH_COMMANDS=/usr/bin/sy-health;/usr/bin/app-check",
		"HEALTH_MIN_UPTIME=0s",
		"HEALTH_TIMEOUT=30s",
		"FIRST_CHECK_DELAY=1s",
		"FIRST_CHECK_FUZZ=0s",
		"CHECK_INTERVAL=3s",
		"CHECK_FUZZ=0s",
		"MAX_BACKOFF=10s",
		"MIN_POLL_INTERVAL=1s",
		"HTTP_TIMEOUT=60s",
		"XZ_DECODER=go",
	}, "\n") + "\n"
	release := fmt.Sprintf("FLATCAR_RELEASE_VERSION=%s\nFLATCAR_RELEASE_BOARD=%s\n", version, board)
	rel := image.OS{
		Version: version,
		Busybox: true,
		Files: map[string]image.File{
			"bin/update-engine":                      {Data: bin, Mode: 0o755},
			"bin/app-check":                          {Data: []byte(check), Mode: 0o755},
			"share/flatcar/release":                  {Data: []byte(release), Mode: 0o644},
			"share/switchyard/e2e.conf":              {Data: []byte(conf), Mode: 0o644},
			"share/switchyard/ca.pem":                {Data: w.caPEM, Mode: 0o644},
			"share/switchyard/tuf-root.json":         {Data: w.rootJSON, Mode: 0o644},
			"share/switchyard/payload-keys/test.pem": {Data: w.payloadKeyPEM, Mode: 0o644},
		},
		Services: []string{engineService},
	}
	if len(o.data) > 0 {
		rel.Files["share/switchyard/release-data.bin"] = image.File{Data: o.data, Mode: 0o644}
	}
	return rel
}

// usr builds a release's USR file system image.
func usr(ctx context.Context, t testing.TB, env *vmtest.Env, o image.OS) string {
	t.Helper()
	p, err := env.Builder.USR(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// machine is one guest's identity and kernel command line.
type machine struct {
	id    string
	group string
	conf  []string // extra update.conf lines
}

func (m machine) cmdline() []string {
	c := []string{
		"switchyard.server=" + serverURL,
		"switchyard.group=" + m.group,
		"switchyard.action=wait",
		"switchyard.conf=MACHINE_ID=" + m.id,
	}
	for _, l := range m.conf {
		c = append(c, "switchyard.conf="+l)
	}
	return c
}

var (
	bootLine  = regexp.MustCompile(`^switchyard-boot: partition=(\d+) label=(\S+) version=(\S+)$`)
	rebooting = regexp.MustCompile(`^switchyard-testos: reboot$`)
)

// expectBoot waits for the boot selector's line and checks the partition and version.
func expectBoot(ctx context.Context, t testing.TB, vm *qemu.VM, partition, version string) {
	t.Helper()
	m, err := vm.Expect(ctx, bootLine)
	if err != nil {
		t.Fatal(err)
	}
	if m[1] != partition || m[3] != version {
		t.Fatalf("booted partition %s version %s, want partition %s version %s", m[1], m[3], partition, version)
	}
	if _, err := vm.Expect(ctx, regexp.MustCompile(`^switchyard-testos: up version=`+regexp.QuoteMeta(version)+` partition=`+partition+`$`)); err != nil {
		t.Fatal(err)
	}
}

// expectLog waits for a line of the daemon's log (slog text) with msg and returns the whole line.
func expectLog(ctx context.Context, t testing.TB, vm *qemu.VM, msg string) []string {
	t.Helper()
	m, err := vm.Expect(ctx, regexp.MustCompile(`^\[update-engine\] .*msg="?`+regexp.QuoteMeta(msg)+`.*$`))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// expectSelfReboot waits for the guest to reboot itself: the test OS's init says so and QEMU
// (-no-reboot) exits cleanly.
func expectSelfReboot(ctx context.Context, t testing.TB, vm *qemu.VM) {
	t.Helper()
	if _, err := vm.Expect(ctx, rebooting); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// slot reads a USR partition's attributes from the disk image on the host.
func slot(t testing.TB, disk string, n int) slots.State {
	t.Helper()
	tb := readGPT(t, disk)
	s, err := slots.Get(tb, n)
	if err != nil {
		t.Fatal(err)
	}
	return s.State
}

func readGPT(t testing.TB, disk string) *gpt.Table {
	t.Helper()
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	tb, err := gpt.Read(context.Background(), f, fi.Size(), 512)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// judgeSlot checks a partition's attributes with our reader and, when installed, with Debian's
// cgpt as an independent judge.
func judgeSlot(t testing.TB, disk string, n int, want slots.State) {
	t.Helper()
	if got := slot(t, disk, n); got != want {
		t.Errorf("partition %d is %+v, want %+v", n, got, want)
	}
	bin, err := exec.LookPath("cgpt")
	if err != nil {
		t.Log("LOUD NOTE: cgpt is missing; GPT states are not cross-checked (run: apt-get install cgpt)")
		return
	}
	var v [3]int
	for i, f := range []string{"-P", "-T", "-S"} {
		out, err := exec.Command(bin, "show", "-i", strconv.Itoa(n), f, disk).CombinedOutput()
		if err != nil {
			t.Fatalf("cgpt show: %v\n%s", err, out)
		}
		// On a GPT whose copies disagree cgpt warns first; the value is the last line.
		lines := strings.Fields(string(out))
		if len(lines) == 0 {
			t.Fatalf("cgpt show %s: no output", f)
		}
		if v[i], err = strconv.Atoi(lines[len(lines)-1]); err != nil {
			t.Fatalf("cgpt show %s: %q", f, out)
		}
	}
	if got := (slots.State{Priority: v[0], Tries: v[1], Successful: v[2] == 1}); got != want {
		t.Errorf("cgpt shows partition %d as %+v, want %+v", n, got, want)
	}
}

// timeout is a context for one step of a scenario.
func timeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

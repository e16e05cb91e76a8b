// Package qemu runs the test images in qemu-system-x86_64 and watches their serial console.
//
// A VM is one machine: a disk image file, a kernel and initramfs booted directly (-kernel,
// -initrd, -append), the disk as a virtio drive, the first serial port on the QEMU process's
// stdio, and QEMU's user-mode network with restrict=on so the guest reaches nothing but the
// guestfwd rules the caller lists. Each guestfwd runs a command per guest connection with the
// connection on its stdin and stdout (the "cmd:" form, which, unlike the chardev form, serves
// any number of connections and does not need the host side listening when QEMU starts).
//
// QEMU runs with -no-reboot, so a reboot inside the guest ends the process like a power-off;
// each boot is one QEMU process, and Restart starts the next one on the same disk. Kill is a
// power cut: SIGKILL to QEMU, nothing flushed by the guest.
//
// Console lines are kept in order for the whole life of the VM (and copied to Config.Console
// when set). Expect waits for the next line matching a pattern, searching from just after the
// previous match, so a test reads the console as a sequence of events; a boot boundary is a
// line "=== qemu: boot N ===" inserted by the runner.
package qemu

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrExited reports that QEMU exited while a caller waited for a console line.
var ErrExited = errors.New("qemu: the VM exited")

// ErrRunning reports Restart on a VM whose QEMU still runs.
var ErrRunning = errors.New("qemu: the VM is still running")

// GuestForward sends the guest's TCP connections to Addr (an address on QEMU's user network,
// e.g. 10.0.2.100:80) to a host command; Command gets the connection on stdin and stdout.
type GuestForward struct {
	Addr    netip.AddrPort
	Command []string
}

// Config describes a machine.
type Config struct {
	Binary  string   // qemu-system-x86_64, or a path to it
	Kernel  string   // bzImage
	Initrd  string   // initramfs
	Append  []string // kernel command line words after console=ttyS0
	Disk    string   // raw disk image file, attached as virtio (/dev/vda)
	Memory  int      // MiB; 0 means 512
	CPUs    int      // 0 means 2
	KVM     bool     // use /dev/kvm; otherwise TCG software emulation
	Forward []GuestForward
	// Console, when set, receives every console line as it arrives.
	Console io.Writer
	Log     *slog.Logger
}

// Args returns QEMU's command line for c, without the binary.
func (c Config) Args() ([]string, error) {
	if c.Kernel == "" || c.Initrd == "" || c.Disk == "" {
		return nil, errors.New("qemu: Kernel, Initrd and Disk are required")
	}
	for _, f := range []string{c.Kernel, c.Initrd, c.Disk} {
		if strings.Contains(f, ",") {
			return nil, fmt.Errorf("qemu: path %q contains a comma", f)
		}
	}
	mem, cpus := c.Memory, c.CPUs
	if mem == 0 {
		mem = 512
	}
	if cpus == 0 {
		cpus = 2
	}
	accel, cpu := "tcg", "max"
	if c.KVM {
		accel, cpu = "kvm", "host"
	}
	netdev := "user,id=net0,restrict=on,ipv6=off"
	for _, f := range c.Forward {
		if !f.Addr.Addr().Is4() || len(f.Command) == 0 {
			return nil, fmt.Errorf("qemu: bad guest forward %v %q", f.Addr, f.Command)
		}
		cmd := strings.Join(f.Command, " ")
		// QEMU option values escape commas by doubling them.
		netdev += fmt.Sprintf(",guestfwd=tcp:%s-cmd:%s", f.Addr, strings.ReplaceAll(cmd, ",", ",,"))
	}
	appendLine := strings.Join(append([]string{"console=ttyS0"}, c.Append...), " ")
	return []string{
		"-nodefaults", "-no-user-config", "-display", "none",
		"-machine", "q35,accel=" + accel, "-cpu", cpu,
		"-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-no-reboot",
		"-chardev", "stdio,id=con0,signal=off", "-serial", "chardev:con0",
		"-kernel", c.Kernel, "-initrd", c.Initrd, "-append", appendLine,
		"-drive", "file=" + c.Disk + ",format=raw,if=none,id=disk0,cache=unsafe",
		"-device", "virtio-blk-pci,drive=disk0",
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=net0",
	}, nil
}

// KVMAvailable reports whether /dev/kvm can be opened for reading and writing.
func KVMAvailable() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// VM is a machine and its current or last QEMU process.
type VM struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever lines or exited change
	lines   []string
	cursor  int // Expect searches from here
	boots   int
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	exited  bool
	exitErr error
	started time.Time
	ran     time.Duration
}

// Start boots a new machine.
func Start(ctx context.Context, cfg Config) (*VM, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Binary == "" {
		cfg.Binary = "qemu-system-x86_64"
	}
	vm := &VM{cfg: cfg, log: cfg.Log, changed: make(chan struct{}), exited: true}
	if err := vm.start(ctx); err != nil {
		return nil, err
	}
	return vm, nil
}

func (vm *VM) start(ctx context.Context) error {
	args, err := vm.cfg.Args()
	if err != nil {
		return err
	}
	// QEMU's lifetime is the VM's, not the caller's context: Kill ends it.
	cmd := exec.Command(vm.cfg.Binary, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	cmd.Stderr = cmd.Stdout
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := ctx.Err(); err != nil {
		return err
	}
	vm.mu.Lock()
	vm.boots++
	boot := vm.boots
	vm.mu.Unlock()
	vm.addLine(fmt.Sprintf("=== qemu: boot %d ===", boot))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("qemu: starting %s: %w", vm.cfg.Binary, err)
	}
	vm.log.InfoContext(ctx, "qemu started", "boot", boot, "pid", cmd.Process.Pid, "kvm", vm.cfg.KVM)
	vm.mu.Lock()
	vm.cmd, vm.stdin, vm.exited, vm.exitErr, vm.started = cmd, stdin, false, nil, time.Now()
	vm.mu.Unlock()
	go vm.read(cmd, stdout)
	return nil
}

// read collects console lines until QEMU closes its output, then reaps the process.
func (vm *VM) read(cmd *exec.Cmd, r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			vm.addLine(strings.TrimRight(line, "\r\n"))
		}
		if err != nil {
			break
		}
	}
	werr := cmd.Wait()
	vm.log.Info("qemu exited", "pid", cmd.Process.Pid, "err", werr)
	vm.mu.Lock()
	vm.exited, vm.exitErr = true, werr
	vm.ran = time.Since(vm.started)
	vm.stdin.Close()
	vm.signal()
	vm.mu.Unlock()
}

// signal wakes the waiters; vm.mu is held.
func (vm *VM) signal() {
	close(vm.changed)
	vm.changed = make(chan struct{})
}

func (vm *VM) addLine(l string) {
	// A serial console line may carry NULs or escape sequences; keep it printable.
	l = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' {
			return -1
		}
		return r
	}, l)
	if vm.cfg.Console != nil {
		fmt.Fprintln(vm.cfg.Console, l)
	}
	vm.mu.Lock()
	vm.lines = append(vm.lines, l)
	vm.signal()
	vm.mu.Unlock()
}

// Expect waits for the next console line that matches re, searching from just after the
// previous match, and returns the line's submatches. It fails with ErrExited when QEMU exits
// without such a line, and with the context's error on timeout; the error then ends with the
// last console lines.
func (vm *VM) Expect(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	for {
		vm.mu.Lock()
		for i := vm.cursor; i < len(vm.lines); i++ {
			if m := re.FindStringSubmatch(vm.lines[i]); m != nil {
				vm.cursor = i + 1
				vm.mu.Unlock()
				return m, nil
			}
		}
		vm.cursor = len(vm.lines)
		exited, ch := vm.exited, vm.changed
		vm.mu.Unlock()
		if exited {
			return nil, fmt.Errorf("%w before a line matched %q; console tail:\n%s", ErrExited, re, vm.Tail(15))
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("qemu: waiting for %q: %w; console tail:\n%s", re, ctx.Err(), vm.Tail(15))
		}
	}
}

// Tail returns the last n console lines.
func (vm *VM) Tail(n int) string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return strings.Join(vm.lines[max(0, len(vm.lines)-n):], "\n")
}

// Lines returns a copy of every console line so far.
func (vm *VM) Lines() []string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return append([]string(nil), vm.lines...)
}

// Boots is the number of QEMU processes started so far.
func (vm *VM) Boots() int {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.boots
}

// Wait waits until QEMU exits (a power-off or, with -no-reboot, a reboot inside the guest) and
// returns its exit error and how long the process ran.
func (vm *VM) Wait(ctx context.Context) (time.Duration, error) {
	for {
		vm.mu.Lock()
		exited, err, ran, ch := vm.exited, vm.exitErr, vm.ran, vm.changed
		vm.mu.Unlock()
		if exited {
			if err != nil {
				return ran, fmt.Errorf("qemu: %w; console tail:\n%s", err, vm.Tail(15))
			}
			return ran, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, fmt.Errorf("qemu: waiting for exit: %w; console tail:\n%s", ctx.Err(), vm.Tail(15))
		}
	}
}

// Kill cuts the power: QEMU gets SIGKILL, and Kill returns once it has been reaped.
func (vm *VM) Kill() {
	vm.mu.Lock()
	cmd, exited, ch := vm.cmd, vm.exited, vm.changed
	vm.mu.Unlock()
	if exited || cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	for {
		<-ch
		vm.mu.Lock()
		exited, ch = vm.exited, vm.changed
		vm.mu.Unlock()
		if exited {
			return
		}
	}
}

// Restart boots the machine again after QEMU exited (or was killed). The disk keeps whatever
// the previous boot wrote.
func (vm *VM) Restart(ctx context.Context) error {
	vm.mu.Lock()
	exited := vm.exited
	vm.mu.Unlock()
	if !exited {
		return ErrRunning
	}
	return vm.start(ctx)
}

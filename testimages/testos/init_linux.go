package testos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-os/switchyard/internal/atomicfile"
	"github.com/switchyard-os/switchyard/testimages/netconf"
	"golang.org/x/sys/unix"
)

// Network is QEMU's user-network default for the first guest.
var Network = netconf.Config{
	Interface: "eth0",
	Address:   netip.MustParsePrefix("10.0.2.15/24"),
	Gateway:   netip.MustParseAddr("10.0.2.2"),
	Loopback:  true,
}

// maxFetchBody bounds what a fetch prints.
const maxFetchBody = 4096

// InitConfig is what Init needs from its caller.
type InitConfig struct {
	Console   io.Writer    // the serial console
	Client    *http.Client // for switchyard.fetch; its Timeout bounds each fetch
	Network   netconf.Config
	Partition string // the booted USR partition number, from the boot selector
}

// Init runs the test OS (see the package comment). It returns only on an error that stops the
// boot; the caller then powers off.
func Init(ctx context.Context, cfg InitConfig) error {
	say := func(format string, args ...any) { fmt.Fprintf(cfg.Console, "switchyard-testos: "+format+"\n", args...) }
	for _, m := range []struct{ src, dir, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/run", "tmpfs"},
		{"tmpfs", "/tmp", "tmpfs"},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return fmt.Errorf("testos: %w", err)
		}
		if err := unix.Mount(m.src, m.dir, m.fstype, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("testos: mount %s: %w", m.dir, err)
		}
	}
	for _, d := range []string{StateDir, filepath.Dir(ConfigFile)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("testos: %w", err)
		}
	}
	raw, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return fmt.Errorf("testos: %w", err)
	}
	cmd, err := ParseCmdline(string(raw))
	if err != nil {
		return err
	}
	version, err := os.ReadFile(VersionFile)
	if err != nil {
		return fmt.Errorf("testos: %w", err)
	}
	if err := netconf.Apply(ctx, cfg.Network); err != nil {
		say("network: %v", err)
	}
	say("up version=%s partition=%s", strings.TrimSpace(string(version)), cfg.Partition)

	if conf := cmd.UpdateConf(); conf != "" {
		if err := atomicfile.WriteFile(ConfigFile, []byte(conf), 0o644); err != nil {
			return err
		}
		say("wrote %s keys=%d", ConfigFile, strings.Count(conf, "\n"))
	}
	for _, u := range cmd.Fetch {
		status, body, err := fetch(ctx, cfg.Client, u)
		if err != nil {
			say("fetch url=%s error=%q", u, err.Error())
			continue
		}
		say("fetch url=%s status=%d body=%q", u, status, body)
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2)
	svcs, err := startServices(cfg.Console, say)
	if err != nil {
		say("services: %v", err)
	}
	done := make(chan struct{})
	go func() { svcs.wait(); close(done) }()

	action := ""
	select {
	case s := <-sigs:
		action = signalAction(s)
	case <-done:
		if cmd.Action != ActionWait {
			action = cmd.Action
			break
		}
		action = signalAction(<-sigs)
	}
	say("%s", action)
	svcs.stop(5 * time.Second)
	unix.Sync()
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		say("remounting / read-only: %v", err)
	}
	how := unix.LINUX_REBOOT_CMD_POWER_OFF
	if action == ActionReboot {
		how = unix.LINUX_REBOOT_CMD_RESTART
	}
	return fmt.Errorf("testos: reboot(2): %w", unix.Reboot(how))
}

func signalAction(s os.Signal) string {
	if s == unix.SIGTERM {
		return ActionReboot
	}
	return ActionPowerOff
}

func fetch(ctx context.Context, c *http.Client, u string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchBody))
	if err != nil {
		return resp.StatusCode, "", err
	}
	return resp.StatusCode, string(b), nil
}

// services are the running service processes.
type services struct {
	cmds []*exec.Cmd
	wg   sync.WaitGroup
}

func startServices(console io.Writer, say func(string, ...any)) (*services, error) {
	s := &services{}
	data, err := os.ReadFile(ServicesFile)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("testos: %w", err)
	}
	lines, err := ParseServices(string(data))
	if err != nil {
		return s, err
	}
	var mu sync.Mutex // one console line at a time
	for _, argv := range lines {
		name := filepath.Base(argv[0])
		c := exec.Command(argv[0], argv[1:]...)
		c.Env = os.Environ()
		pr, pw := io.Pipe()
		c.Stdout, c.Stderr = pw, pw
		if err := c.Start(); err != nil {
			say("service %s: %v", name, err)
			continue
		}
		say("service %s started pid=%d", name, c.Process.Pid)
		s.cmds = append(s.cmds, c)
		s.wg.Add(2)
		go func() {
			defer s.wg.Done()
			sc := bufio.NewScanner(pr)
			for sc.Scan() {
				mu.Lock()
				fmt.Fprintf(console, "[%s] %s\n", name, sc.Text())
				mu.Unlock()
			}
		}()
		go func() {
			defer s.wg.Done()
			err := c.Wait()
			pw.Close()
			code := 0
			if err != nil {
				code = -1
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				}
			}
			say("service %s exited code=%d", name, code)
		}()
	}
	return s, nil
}

func (s *services) wait() { s.wg.Wait() }

// stop sends SIGTERM to every service and waits up to grace for them to exit.
func (s *services) stop(grace time.Duration) {
	for _, c := range s.cmds {
		_ = c.Process.Signal(unix.SIGTERM) // fails harmlessly when it already exited
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
	}
}

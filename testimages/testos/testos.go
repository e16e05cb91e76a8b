// Package testos is the init of the minimal test OS that lives on the USR partitions of the
// test images. The boot selector mounts ROOT as / and the chosen USR partition read-only on
// /usr, then execs /usr/bin/init, which runs Init.
//
// What Init does, in order:
//
//  1. mounts what the boot selector did not move (proc, sys, dev), a tmpfs on /run and /tmp,
//     and creates /var/lib/switchyard and /etc/switchyard on ROOT;
//  2. brings up the network as QEMU's user network expects it: lo, and eth0 with 10.0.2.15/24
//     via 10.0.2.2 (package netconf);
//  3. prints "switchyard-testos: up version=V partition=N";
//  4. writes /etc/switchyard/update.conf from the kernel command line (switchyard.server=URL,
//     switchyard.group=NAME, switchyard.conf=KEY=VALUE repeated) when any is given;
//  5. fetches every switchyard.fetch=URL of the command line and prints
//     "switchyard-testos: fetch url=U status=S body=B" or "... fetch url=U error=E";
//  6. runs the services listed in /usr/share/switchyard/services (one command line per line,
//     started in order, each one's output copied to the console with its name), and waits
//     for them;
//  7. then does switchyard.action: poweroff (the default), reboot, or wait (until a signal).
//
// Signals follow busybox init, so `busybox reboot` and `busybox poweroff` work inside the
// test OS, and an update engine can simply signal PID 1: SIGTERM reboots, SIGUSR2 and SIGUSR1
// power off. Before the reboot(2) call every service gets SIGTERM, then the file systems are
// synced and ROOT is remounted read-only.
//
// Command line keys are parsed by ParseCmdline, which is pure and fuzzed. Files are written
// with internal/atomicfile like everywhere else: it uses the standard library only, so the
// init stays as small as it was.
package testos

import (
	"errors"
	"fmt"
	"strings"
)

// Kernel command line keys the test OS reads.
const (
	KeyFetch  = "switchyard.fetch"
	KeyServer = "switchyard.server"
	KeyGroup  = "switchyard.group"
	KeyAction = "switchyard.action"
	KeyConf   = "switchyard.conf"
)

// Actions at the end of Init.
const (
	ActionPowerOff = "poweroff"
	ActionReboot   = "reboot"
	ActionWait     = "wait"
)

// Paths inside the running test OS.
const (
	VersionFile  = "/usr/share/switchyard/version"
	ServicesFile = "/usr/share/switchyard/services"
	ConfigFile   = "/etc/switchyard/update.conf"
	StateDir     = "/var/lib/switchyard"
)

// maxCmdline bounds /proc/cmdline (the kernel's COMMAND_LINE_SIZE on x86 is 2048).
const maxCmdline = 4096

// ErrCmdline reports a kernel command line the test OS cannot use.
var ErrCmdline = errors.New("testos: bad kernel command line")

// Cmdline is what the test OS takes from the kernel command line.
type Cmdline struct {
	Fetch  []string
	Server string
	Group  string
	Action string
	// Conf holds extra update.conf lines, each KEY=VALUE (switchyard.conf=KEY=VALUE,
	// repeatable), e.g. REBOOT_STRATEGY=etcd-lock.
	Conf []string
}

// ParseCmdline reads the switchyard.* keys from a kernel command line. Words are separated by
// spaces; a value may be double-quoted as the kernel allows ("key=\"a b\"").
func ParseCmdline(s string) (Cmdline, error) {
	if len(s) > maxCmdline {
		return Cmdline{}, fmt.Errorf("%w: %d bytes", ErrCmdline, len(s))
	}
	c := Cmdline{Action: ActionPowerOff}
	words, err := splitCmdline(s)
	if err != nil {
		return Cmdline{}, err
	}
	for _, w := range words {
		k, v, _ := strings.Cut(w, "=")
		switch k {
		case KeyFetch:
			if v == "" {
				return Cmdline{}, fmt.Errorf("%w: empty %s", ErrCmdline, KeyFetch)
			}
			c.Fetch = append(c.Fetch, v)
		case KeyServer:
			c.Server = v
		case KeyConf:
			key, _, ok := strings.Cut(v, "=")
			if !ok || !confKey(key) {
				return Cmdline{}, fmt.Errorf("%w: %s=%q is not KEY=VALUE with KEY in [A-Z0-9_]", ErrCmdline, KeyConf, v)
			}
			c.Conf = append(c.Conf, v)
		case KeyGroup:
			c.Group = v
		case KeyAction:
			switch v {
			case ActionPowerOff, ActionReboot, ActionWait:
				c.Action = v
			default:
				return Cmdline{}, fmt.Errorf("%w: %s=%q (want %s, %s or %s)", ErrCmdline, KeyAction, v, ActionPowerOff, ActionReboot, ActionWait)
			}
		}
	}
	return c, nil
}

func splitCmdline(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	quoted, inWord := false, false
	for _, r := range strings.TrimRight(s, "\n\x00") {
		switch {
		case r < 0x20 && r != ' ' && r != '\t' && r != '\n', r == 0x7f:
			return nil, fmt.Errorf("%w: control character %U", ErrCmdline, r)
		case r == '"':
			quoted = !quoted
			inWord = true
		case (r == ' ' || r == '\t' || r == '\n') && !quoted:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("%w: unbalanced quote", ErrCmdline)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// UpdateConf renders /etc/switchyard/update.conf for the command line, in Flatcar's
// KEY=value form: SERVER, GROUP, then the switchyard.conf lines in order. It returns "" when
// the command line sets none of them.
func (c Cmdline) UpdateConf() string {
	var b strings.Builder
	if c.Server != "" {
		fmt.Fprintf(&b, "SERVER=%s\n", c.Server)
	}
	if c.Group != "" {
		fmt.Fprintf(&b, "GROUP=%s\n", c.Group)
	}
	for _, l := range c.Conf {
		fmt.Fprintf(&b, "%s\n", l)
	}
	return b.String()
}

func confKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// ParseServices reads the services file: one command line per line, fields separated by
// spaces, blank lines and lines starting with '#' ignored. Commands must be absolute paths.
func ParseServices(s string) ([][]string, error) {
	var out [][]string
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if !strings.HasPrefix(f[0], "/") {
			return nil, fmt.Errorf("testos: services line %d: %q is not an absolute path", i+1, f[0])
		}
		out = append(out, f)
	}
	return out, nil
}

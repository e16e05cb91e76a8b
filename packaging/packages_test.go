package packaging

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/update-engine/config"
)

// built is where `make packages` leaves the packages, relative to this directory.
const built = "../build/packages"

// side is one package and what must land where.
type side struct {
	name      string   // package name
	binaries  []string // installed executables
	units     []string // installed units
	conffiles []string // configuration files dpkg must keep on upgrade
	docs      []string // documentation files
	runs      []string // a command that must succeed once installed (the binary starts)
	cli       []string // binaries whose man pages and shell completions the package holds
	optional  map[string]string
}

var sides = []side{
	{
		name:      "switchyard-host",
		binaries:  []string{"/usr/bin/update-engine", "/usr/bin/updatectl"},
		units:     []string{"/usr/lib/systemd/system/update-engine.service"},
		conffiles: []string{config.SwitchyardConfFile},
		docs:      []string{"/usr/share/doc/switchyard-host/update-engine.md"},
		runs:      []string{"/usr/bin/update-engine", "-keys"},
		cli:       []string{"update-engine", "updatectl"},
		// The D-Bus policy is packaged once the tree holds it.
		optional: map[string]string{"dbus/com.coreos.update1.conf": "/usr/share/dbus-1/system.d/com.coreos.update1.conf"},
	},
	{
		name:      "switchyard-server",
		binaries:  []string{"/usr/bin/omaha-server", "/usr/bin/syctl"},
		units:     []string{"/usr/lib/systemd/system/omaha-server.service"},
		conffiles: []string{"/etc/default/omaha-server"},
		docs:      []string{"/usr/share/doc/switchyard-server/omaha-server.md"},
		runs:      []string{"/usr/bin/omaha-server", "help"},
		cli:       []string{"omaha-server", "syctl"},
	},
}

// builtPackage returns the one package of kind ("deb" or "rpm") for name in build/packages,
// skipping the test when `make packages` has not run.
func builtPackage(t *testing.T, name, kind string) string {
	t.Helper()
	pattern := name + "_*.deb"
	if kind == "rpm" {
		pattern = name + "-[0-9]*.rpm"
	}
	m, err := filepath.Glob(filepath.Join(built, pattern))
	if err != nil {
		t.Fatal(err)
	}
	switch len(m) {
	case 0:
		t.Skipf("SKIPPED: no %s in %s: run `make packages` first (make unit and make test do)", pattern, built)
	case 1:
		return m[0]
	}
	t.Fatalf("more than one %s in %s: %v", pattern, built, m)
	return ""
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := runErr(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(name string, args ...string) (string, error) {
	var b bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	return b.String(), err
}

func installed(name string) bool {
	out, err := runErr("dpkg-query", "-W", "-f=${db:Status-Status}", name)
	return err == nil && strings.TrimSpace(out) != "not-installed"
}

// needDpkgRoot skips, saying why, where the test cannot install a package.
func needDpkgRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("SKIPPED in -short mode: the test installs and purges packages on this machine (make unit runs it)")
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: installing the .deb needs root (make test runs as root or through sudo)")
	}
	for _, c := range []string{"dpkg", "dpkg-deb", "dpkg-query", "systemd-analyze"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("SKIPPED: %s is missing: this test installs the .deb on a Debian machine with systemd", c)
		}
	}
}

// debFiles lists the regular files and the directories of a .deb (dpkg-deb -c).
func debFiles(t *testing.T, deb string) (files, dirs []string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(run(t, "dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c line %q", line)
		}
		p := strings.TrimSuffix(strings.TrimPrefix(f[len(f)-1], "."), "/")
		switch line[0] {
		case '-':
			files = append(files, p)
		case 'd':
			dirs = append(dirs, p)
		default:
			t.Fatalf("%s holds %q: not a regular file or directory", deb, line)
		}
	}
	return files, dirs
}

// execStarts returns the executables of a unit's ExecStart= lines, prefixes (-@:+!) removed.
func execStarts(unit string) []string {
	var out []string
	for _, line := range strings.Split(unit, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "ExecStart=")
		if !ok {
			continue
		}
		v = strings.TrimLeft(v, "-@:+!")
		if f := strings.Fields(v); len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return out
}

// TestDebInstallsAndPurgesCleanly installs each .deb on this machine with dpkg -i, checks
// every file lands where the units and the README say, runs systemd-analyze verify on the
// installed units, then purges the package and checks nothing is left.
func TestDebInstallsAndPurgesCleanly(t *testing.T) {
	needDpkgRoot(t)
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sides {
		t.Run(s.name, func(t *testing.T) {
			deb := builtPackage(t, s.name, "deb")
			if got := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, "Package")); got != s.name {
				t.Fatalf("%s is package %q, want %q", deb, got, s.name)
			}
			if installed(s.name) {
				t.Skipf("SKIPPED: %s is already installed on this machine; the test would replace and purge it", s.name)
			}
			files, dirs := debFiles(t, deb)
			// Directories the package would create: each must be gone after the purge.
			var created []string
			for _, d := range dirs {
				if _, err := os.Lstat(d); errors.Is(err, fs.ErrNotExist) {
					created = append(created, d)
				}
			}

			run(t, "dpkg", "-i", deb)
			t.Cleanup(func() {
				if installed(s.name) {
					runErr("dpkg", "--purge", s.name)
				}
			})
			listed := strings.Split(strings.TrimSpace(run(t, "dpkg", "-L", s.name)), "\n")

			want := slices.Concat(s.binaries, s.units, s.conffiles, s.docs, cliFiles(s.cli))
			checkCLIFiles(t, s.cli)
			for src, dst := range s.optional {
				if _, err := os.Stat(src); err == nil {
					want = append(want, dst)
				} else if slices.Contains(listed, dst) {
					t.Errorf("%s installs %s but the tree has no %s", s.name, dst, src)
				}
			}
			for _, p := range want {
				if !slices.Contains(listed, p) {
					t.Errorf("%s does not install %s (dpkg -L: %v)", s.name, p, listed)
				}
				if _, err := os.Stat(p); err != nil {
					t.Errorf("after dpkg -i: %v", err)
				}
			}
			for src, dst := range s.optional {
				if b, err := os.ReadFile(src); err == nil {
					if got, _ := os.ReadFile(dst); !bytes.Equal(got, b) {
						t.Errorf("installed %s differs from packaging/%s", dst, src)
					}
				}
			}
			for _, b := range s.binaries {
				if fi, err := os.Stat(b); err == nil && fi.Mode().Perm() != 0o755 {
					t.Errorf("%s has mode %v, want 0755", b, fi.Mode().Perm())
				}
				// The README's install section names the same paths.
				if !bytes.Contains(readme, []byte(b)) {
					t.Errorf("README.md does not name %s", b)
				}
			}

			conf := run(t, "dpkg-query", "-W", "-f=${Conffiles}", s.name)
			for _, c := range s.conffiles {
				if !strings.Contains(conf, " "+c+" ") {
					t.Errorf("%s is not a conffile of %s (an upgrade would overwrite an edited one); conffiles:\n%s", c, s.name, conf)
				}
			}

			for _, u := range s.units {
				unit, err := os.ReadFile(u)
				if err != nil {
					t.Fatal(err)
				}
				execs := execStarts(string(unit))
				if len(execs) == 0 {
					t.Errorf("%s has no ExecStart=", u)
				}
				for _, e := range execs {
					if !slices.Contains(s.binaries, e) {
						t.Errorf("%s starts %s, which is not one of the binaries %s installs (%v)", u, e, s.name, s.binaries)
					}
				}
				for _, line := range strings.Split(string(unit), "\n") {
					if doc, ok := strings.CutPrefix(line, "Documentation=file://"); ok && !slices.Contains(listed, doc) {
						t.Errorf("%s names documentation %s, which %s does not install", u, doc, s.name)
					}
				}
				if !strings.Contains(string(unit), "\nType=notify\n") || !strings.Contains(string(unit), "\nWatchdogSec=") {
					t.Errorf("%s is not Type=notify with a WatchdogSec=: the daemon sends READY=1 and WATCHDOG=1", u)
				}
				// verify exits 0 on some warnings; any output about the unit is a finding.
				if out, err := runErr("systemd-analyze", "verify", u); err != nil || strings.TrimSpace(out) != "" {
					t.Errorf("systemd-analyze verify %s: %v\n%s", u, err, out)
				}
			}
			if out, err := runErr(s.runs[0], s.runs[1:]...); err != nil {
				t.Errorf("%s: %v\n%s", strings.Join(s.runs, " "), err, out)
			}

			run(t, "dpkg", "--purge", s.name)
			if installed(s.name) {
				t.Errorf("%s is still known to dpkg after dpkg --purge", s.name)
			}
			for _, p := range slices.Concat(files, created) {
				if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("after dpkg --purge %s, %s is left behind (%v)", s.name, p, err)
				}
			}
		})
	}
}

// TestRPMMatchesDeb reads each .rpm with rpm itself and checks it carries the same files,
// modes and configuration files as the .deb, and the same maintainer scripts' effect
// (a daemon-reload after install).
func TestRPMMatchesDeb(t *testing.T) {
	for _, c := range []string{"rpm", "dpkg-deb"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("SKIPPED: %s is missing (make deps installs Debian's rpm and dpkg)", c)
		}
	}
	for _, s := range sides {
		t.Run(s.name, func(t *testing.T) {
			deb, rpm := builtPackage(t, s.name, "deb"), builtPackage(t, s.name, "rpm")
			if got := strings.TrimSpace(run(t, "rpm", "-qp", "--qf", "%{NAME}", rpm)); got != s.name {
				t.Fatalf("%s is package %q, want %q", rpm, got, s.name)
			}
			debRegular, _ := debFiles(t, deb)
			// rpm -qlvp: ls -l lines, the path last.
			var rpmRegular []string
			for _, line := range strings.Split(strings.TrimSpace(run(t, "rpm", "-qlvp", rpm)), "\n") {
				f := strings.Fields(line)
				if len(f) > 0 && line[0] == '-' {
					rpmRegular = append(rpmRegular, f[len(f)-1])
				}
			}
			slices.Sort(debRegular)
			slices.Sort(rpmRegular)
			if !slices.Equal(debRegular, rpmRegular) {
				t.Errorf("files differ:\n.deb %v\n.rpm %v", debRegular, rpmRegular)
			}
			for _, b := range s.binaries {
				if !slices.Contains(rpmRegular, b) {
					t.Errorf("%s does not carry %s", rpm, b)
				}
			}
			rpmConf := strings.Fields(run(t, "rpm", "-qcp", rpm))
			slices.Sort(rpmConf)
			want := slices.Clone(s.conffiles)
			slices.Sort(want)
			if !slices.Equal(rpmConf, want) {
				t.Errorf("rpm configuration files %v, want %v", rpmConf, want)
			}
			if scripts := run(t, "rpm", "-qp", "--scripts", rpm); !strings.Contains(scripts, "systemctl daemon-reload") {
				t.Errorf("%s has no daemon-reload in its scripts:\n%s", rpm, scripts)
			}
		})
	}
}

// cliFiles are the man page and the completions a binary's package installs.
func cliFiles(binaries []string) []string {
	var files []string
	for _, b := range binaries {
		files = append(files, "/usr/share/man/man1/"+b+".1.gz",
			"/usr/share/bash-completion/completions/"+b,
			"/usr/share/zsh/vendor-completions/_"+b,
			"/usr/share/fish/vendor_completions.d/"+b+".fish")
	}
	return files
}

// checkCLIFiles checks the installed man pages and completions of binaries are usable: the
// man page is a gzipped page man finds, the bash completion sources in bash and registers
// itself for the binary, the zsh and fish ones are the binary's.
func checkCLIFiles(t *testing.T, binaries []string) {
	t.Helper()
	for _, b := range binaries {
		page := "/usr/share/man/man1/" + b + ".1.gz"
		if f, err := os.Open(page); err == nil {
			zr, err := gzip.NewReader(f)
			var text []byte
			if err == nil {
				text, err = io.ReadAll(io.LimitReader(zr, 1<<20))
			}
			f.Close()
			if err != nil || !bytes.Contains(text, []byte(".TH \""+strings.ToUpper(b)+"\" \"1\"")) {
				t.Errorf("%s: not a gzipped man page (%v)", page, err)
			}
		}
		if _, err := exec.LookPath("man"); err == nil {
			if got := strings.TrimSpace(run(t, "man", "-w", b)); got != page {
				t.Errorf("man -w %s = %q, want %s", b, got, page)
			}
		} else {
			t.Logf("SKIPPED man -w: man is not installed (the page was read above)")
		}
		bashFile := "/usr/share/bash-completion/completions/" + b
		if out := run(t, "bash", "-c", "source "+bashFile+" && complete -p "+b); !strings.Contains(out, b) {
			t.Errorf("bash: %s registers no completion for %s: %q", bashFile, b, out)
		}
		for _, f := range []string{"/usr/share/zsh/vendor-completions/_" + b, "/usr/share/fish/vendor_completions.d/" + b + ".fish"} {
			if text, err := os.ReadFile(f); err != nil || !bytes.Contains(text, []byte(b+" __complete")) && !bytes.Contains(text, []byte("__complete")) {
				t.Errorf("%s: not a completion script for %s (%v)", f, b, err)
			}
		}
	}
}

package testos

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/switchyard-os/switchyard/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// Health checks what a booted test OS must have: a version on /usr, /usr mounted read-only,
// a writable and durable state directory on ROOT, and the network address. It prints one line
// per check and returns the first failure. It is the placeholder for the update engine's own
// health checks, run as a service of the test OS.
func Health(ctx context.Context, w io.Writer, network string) error {
	checks := []struct {
		name string
		fn   func() error
	}{
		{"version", func() error {
			b, err := os.ReadFile(VersionFile)
			if err != nil {
				return err
			}
			if strings.TrimSpace(string(b)) == "" {
				return fmt.Errorf("%s is empty", VersionFile)
			}
			return nil
		}},
		{"usr-read-only", func() error {
			var st unix.Statfs_t
			if err := unix.Statfs("/usr", &st); err != nil {
				return err
			}
			if st.Flags&unix.ST_RDONLY == 0 {
				return fmt.Errorf("/usr is mounted read-write")
			}
			return nil
		}},
		{"state-writable", func() error {
			return atomicfile.WriteFile(filepath.Join(StateDir, "health-probe"), []byte("ok\n"), 0o644)
		}},
		{"network", func() error {
			ifc, err := net.InterfaceByName("eth0")
			if err != nil {
				return err
			}
			addrs, err := ifc.Addrs()
			if err != nil {
				return err
			}
			for _, a := range addrs {
				if a.String() == network {
					return nil
				}
			}
			return fmt.Errorf("eth0 has %v, want %s", addrs, network)
		}},
	}
	for _, c := range checks {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.fn(); err != nil {
			fmt.Fprintf(w, "switchyard-health: FAIL %s: %v\n", c.name, err)
			return fmt.Errorf("testos: health check %s: %w", c.name, err)
		}
		fmt.Fprintf(w, "switchyard-health: ok %s\n", c.name)
	}
	return nil
}

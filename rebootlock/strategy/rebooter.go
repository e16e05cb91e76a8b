package strategy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Command reboots by running a command, e.g. {"systemctl", "reboot"}.
type Command []string

// Systemctl returns `systemctl reboot`, which asks systemd to reboot.
func Systemctl() Command { return Command{"systemctl", "reboot"} }

// Reboot runs the command and returns its error with its output.
func (c Command) Reboot(ctx context.Context) error {
	if len(c) == 0 || c[0] == "" {
		return errors.New("strategy: empty reboot command")
	}
	cmd := exec.CommandContext(ctx, c[0], c[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 512 {
			msg = msg[:512] + "…"
		}
		return fmt.Errorf("strategy: %s: %w: %s", strings.Join(c, " "), err, msg)
	}
	return nil
}

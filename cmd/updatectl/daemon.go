package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/update-engine/control"
	"github.com/switchyard-os/switchyard/update-engine/engine"
)

// defaultSocket is update-engine's control socket (CONTROL_SOCKET in update.conf).
const defaultSocket = "/run/switchyard/update-engine.sock"

// newDaemonCmd returns one of the commands that talk to the local update-engine: cmd is
// status, check, watch, mark-good or rollback. They share their flags and this file.
func newDaemonCmd(cmd, short string) *cobra.Command {
	c := &cobra.Command{Use: cmd, Short: short}
	fs := c.Flags()
	socket := fs.String("socket", defaultSocket, "update-engine control socket")
	asJSON := fs.Bool("json", false, "print the status as JSON (status, watch)")
	wait := fs.Bool("wait", false, "check: watch the check (and the update it starts) until it settles")
	c.RunE = usage.Run(func(ctx context.Context, args []string, stdout, _ io.Writer) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: %s takes no arguments", errUsage, cmd)
		}
		return runDaemon(ctx, cmd, control.NewClient(*socket), *asJSON, *wait, stdout)
	})
	return c
}

// runDaemon runs the daemon command cmd over c.
func runDaemon(ctx context.Context, cmd string, c *control.Client, asJSON, wait bool, stdout io.Writer) error {
	switch cmd {
	case "status":
		s, err := c.Status(ctx)
		if err != nil {
			return err
		}
		return printStatus(stdout, s, asJSON)
	case "check":
		s, err := c.Check(ctx)
		if errors.Is(err, control.ErrBusy) {
			return fmt.Errorf("an update is in progress (%v); see `updatectl watch`", err)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "check requested (status %s)\n", s.Status)
		if !wait {
			return nil
		}
		return watch(ctx, c, stdout, asJSON, s, true)
	case "watch":
		s, err := c.Status(ctx)
		if err != nil {
			return err
		}
		return watch(ctx, c, stdout, asJSON, s, false)
	case "mark-good":
		s, err := c.MarkGood(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "marked %s good\n", orUnknown(s.ActivePartition))
		return nil
	case "rollback":
		s, err := c.Rollback(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "rollback requested: %s boots next after a reboot\n", orUnknown(otherThan(s)))
		return nil
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

func orUnknown(s string) string {
	if s == "" {
		return "the partition"
	}
	return s
}

func otherThan(s engine.Snapshot) string {
	if s.TargetPartition != "" {
		return s.TargetPartition
	}
	return ""
}

// printStatus prints update_engine_client -status's lines, then ours.
func printStatus(w io.Writer, s engine.Snapshot, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	var last int64
	if !s.LastChecked.IsZero() {
		last = s.LastChecked.Unix()
	}
	newVersion := s.NewVersion
	if newVersion == "" {
		newVersion = "0.0.0"
	}
	fmt.Fprintf(w, "LAST_CHECKED_TIME=%d\nPROGRESS=%f\nCURRENT_OP=%s\nNEW_VERSION=%s\nNEW_SIZE=%d\n",
		last, s.Progress, s.Status, newVersion, s.NewSize)
	fmt.Fprintf(w, "CURRENT_VERSION=%s\n", s.CurrentVersion)
	if s.ActivePartition != "" {
		fmt.Fprintf(w, "ACTIVE_PARTITION=%s\n", s.ActivePartition)
	}
	if !s.NextCheck.IsZero() {
		fmt.Fprintf(w, "NEXT_CHECK_TIME=%d\n", s.NextCheck.Unix())
	}
	if s.LastError != "" {
		fmt.Fprintf(w, "LAST_ERROR_CODE=%d\nLAST_ERROR=%s\n", s.LastErrorCode, s.LastError)
	}
	if s.RebootPostponed != "" {
		fmt.Fprintf(w, "REBOOT_POSTPONED=%s\n", s.RebootPostponed)
	}
	return nil
}

// watch prints the status as it changes, with a progress bar while downloading, until the
// daemon settles (IDLE or UPDATED_NEED_REBOOT), or ctx ends. When started settled it returns
// at once, unless afterCheck says a check was just asked for: then it first waits for the
// daemon to move (a check moves the sequence at least twice: CHECKING, then the result).
func watch(ctx context.Context, c *control.Client, w io.Writer, asJSON bool, s engine.Snapshot, afterCheck bool) error {
	start := s.Seq
	worked := false // the daemon was seen busy, or moved after the check
	last := ""
	for {
		worked = worked || !s.Status.Settled() || (afterCheck && s.Seq >= start+2)
		if asJSON {
			if err := json.NewEncoder(w).Encode(s); err != nil {
				return err
			}
		} else {
			line := string(s.Status)
			if s.Status == engine.StatusDownloading || s.Status == engine.StatusVerifying {
				line = fmt.Sprintf("%-36s %s %5.1f%% %s/%s", s.Status, bar(s.Progress, 30), 100*s.Progress,
					bytesIEC(s.BytesDone), bytesIEC(s.BytesTotal))
			}
			if line != last {
				fmt.Fprintln(w, line)
				last = line
			}
		}
		if s.Status.Settled() && (worked || !afterCheck) {
			if worked && s.LastError != "" && s.Status == engine.StatusIdle {
				return fmt.Errorf("update failed (error code %d): %s", s.LastErrorCode, s.LastError)
			}
			return nil
		}
		next, err := c.Wait(ctx, s.Seq)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		s = next
	}
}

func bar(f float64, width int) string {
	f = min(max(f, 0), 1)
	n := int(f*float64(width) + 0.5)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

func bytesIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

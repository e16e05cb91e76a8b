package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/rebootlock"
)

// lockLong is the description of `updatectl lock`.
const lockLong = `The reboot lock in etcd, the locksmithctl jobs:

  status          the group's max and holders, with age and liveness (--json for JSON)
  lock            take a slot for --id; fails at once when the group is full, unless --wait
  unlock          release --id's slot (also clears any holder, dead or alive)
  set-max N       set the group's number of slots (N >= 1); lowering keeps current holders
  reclaim ID      free the slot of a stale holder (one that never came back)

Each flag also comes from the environment (UPDATECTL_ETCD_ENDPOINTS etc.; locksmithctl's
LOCKSMITHCTL_ENDPOINT, LOCKSMITHCTL_ETCD_CAFILE, LOCKSMITHCTL_ETCD_CERTFILE,
LOCKSMITHCTL_ETCD_KEYFILE, LOCKSMITHCTL_ETCD_USERNAME, LOCKSMITHCTL_ETCD_PASSWORD and
LOCKSMITHCTL_GROUP are read too; flags win over UPDATECTL_*, which win over LOCKSMITHCTL_*).`

// lockConfig is what the flags and the environment say.
type lockConfig struct {
	endpoints, group, id, prefix       string
	caFile, certFile, keyFile          string
	username, password                 string
	asJSON, wait                       bool
	timeout                            time.Duration
	machineIDFile, bootIDFile, command string
	args                               []string
}

// lockEnv names, per flag, the environment variables read for its default, first one wins.
var lockEnv = map[string][]string{
	"endpoints": {"UPDATECTL_ETCD_ENDPOINTS", "LOCKSMITHCTL_ENDPOINT"},
	"cacert":    {"UPDATECTL_ETCD_CACERT", "LOCKSMITHCTL_ETCD_CAFILE"},
	"cert":      {"UPDATECTL_ETCD_CERT", "LOCKSMITHCTL_ETCD_CERTFILE"},
	"key":       {"UPDATECTL_ETCD_KEY", "LOCKSMITHCTL_ETCD_KEYFILE"},
	"username":  {"UPDATECTL_ETCD_USERNAME", "LOCKSMITHCTL_ETCD_USERNAME"},
	"password":  {"UPDATECTL_ETCD_PASSWORD", "LOCKSMITHCTL_ETCD_PASSWORD"},
	"group":     {"UPDATECTL_LOCK_GROUP", "LOCKSMITHCTL_GROUP"},
	"prefix":    {"UPDATECTL_LOCK_PREFIX"},
	"id":        {"UPDATECTL_LOCK_ID"},
}

func envDefault(getenv func(string) string, flagName, def string) string {
	for _, name := range lockEnv[flagName] {
		if v := getenv(name); v != "" {
			return v
		}
	}
	return def
}

// newLockCmd returns `updatectl lock COMMAND [ARG]`, the locksmithctl jobs on the etcd
// reboot lock: getenv supplies the environment, run does the job the flags describe.
// The lock jobs are one command taking the job as its first argument (like locksmithctl),
// so flags may come before and after it; completion offers the jobs.
func newLockCmd(getenv func(string) string, run func(context.Context, lockConfig, io.Writer) error) *cobra.Command {
	c := &cobra.Command{
		Use:       "lock status|lock|unlock|set-max N|reclaim ID",
		Short:     "the reboot lock (status, lock, unlock, set-max, reclaim)",
		Long:      lockLong,
		ValidArgs: []string{"status", "lock", "unlock", "set-max", "reclaim"},
	}
	var cfg lockConfig
	fs := c.Flags()
	// No default comes from the environment: the environment is read after parsing, for
	// the flags not given, so help and the generated docs show the same defaults everywhere
	// and never a secret (the password).
	fs.StringVar(&cfg.endpoints, "endpoints", "http://127.0.0.1:2379", "etcd endpoints, comma-separated (env UPDATECTL_ETCD_ENDPOINTS, LOCKSMITHCTL_ENDPOINT)")
	fs.StringVar(&cfg.group, "group", "default", "reboot group (env UPDATECTL_LOCK_GROUP, LOCKSMITHCTL_GROUP)")
	fs.StringVar(&cfg.id, "id", "", "holder id (default: the machine id from /etc/machine-id; env UPDATECTL_LOCK_ID)")
	fs.StringVar(&cfg.prefix, "prefix", rebootlock.DefaultPrefix, "etcd key prefix of the lock (env UPDATECTL_LOCK_PREFIX)")
	fs.StringVar(&cfg.caFile, "cacert", "", "CA certificate to verify etcd, PEM (env UPDATECTL_ETCD_CACERT, LOCKSMITHCTL_ETCD_CAFILE)")
	fs.StringVar(&cfg.certFile, "cert", "", "client certificate for etcd, PEM (env UPDATECTL_ETCD_CERT, LOCKSMITHCTL_ETCD_CERTFILE)")
	fs.StringVar(&cfg.keyFile, "key", "", "client key for etcd, PEM (env UPDATECTL_ETCD_KEY, LOCKSMITHCTL_ETCD_KEYFILE)")
	fs.StringVar(&cfg.username, "username", "", "etcd user (env UPDATECTL_ETCD_USERNAME, LOCKSMITHCTL_ETCD_USERNAME)")
	fs.StringVar(&cfg.password, "password", "", "etcd password (env UPDATECTL_ETCD_PASSWORD, LOCKSMITHCTL_ETCD_PASSWORD)")
	fs.BoolVar(&cfg.asJSON, "json", false, "status: print JSON")
	fs.BoolVar(&cfg.wait, "wait", false, "lock: wait for a free slot instead of failing")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "bound of each etcd request")
	cfg.machineIDFile, cfg.bootIDFile = "/etc/machine-id", "/proc/sys/kernel/random/boot_id"
	c.RunE = usage.Run(func(ctx context.Context, positional []string, stdout, _ io.Writer) error {
		for name := range lockEnv {
			if !fs.Changed(name) {
				if v := envDefault(getenv, name, ""); v != "" {
					if err := fs.Set(name, v); err != nil {
						return err
					}
				}
			}
		}
		if err := lockArgs(&cfg, positional); err != nil {
			return err
		}
		return run(ctx, cfg, stdout)
	})
	return c
}

// lockArgs checks the job and its arguments and records them in cfg.
func lockArgs(cfg *lockConfig, positional []string) error {
	if len(positional) == 0 {
		return fmt.Errorf("%w: lock needs a command (status, lock, unlock, set-max, reclaim)", errUsage)
	}
	cfg.command, cfg.args = positional[0], positional[1:]
	want := map[string]int{"status": 0, "lock": 0, "unlock": 0, "set-max": 1, "reclaim": 1}
	n, ok := want[cfg.command]
	if !ok {
		return fmt.Errorf("%w: unknown lock command %q", errUsage, cfg.command)
	}
	if len(cfg.args) != n {
		return fmt.Errorf("%w: lock %s takes %d argument(s), got %d", errUsage, cfg.command, n, len(cfg.args))
	}
	if cfg.timeout <= 0 {
		return fmt.Errorf("%w: --timeout must be positive", errUsage)
	}
	return nil
}

func lockMain(ctx context.Context, cfg lockConfig, stdout io.Writer) error {
	var maxArg int
	if cfg.command == "set-max" {
		n, err := strconv.Atoi(cfg.args[0])
		if err != nil {
			return fmt.Errorf("%w: set-max: %q is not a number", errUsage, cfg.args[0])
		}
		if n < 1 {
			return fmt.Errorf("lock set-max: max must be at least 1, got %d", n)
		}
		maxArg = n
	}
	id := cfg.id
	if id == "" && (cfg.command == "lock" || cfg.command == "unlock") {
		b, err := os.ReadFile(cfg.machineIDFile)
		if err != nil {
			return fmt.Errorf("lock: no --id and no machine id: %w", err)
		}
		id = strings.TrimSpace(string(b))
	}
	cli, err := rebootlock.NewClient(rebootlock.EtcdConfig{
		Endpoints: []string{cfg.endpoints},
		CAFile:    cfg.caFile, CertFile: cfg.certFile, KeyFile: cfg.keyFile,
		Username: cfg.username, Password: cfg.password,
		DialTimeout: cfg.timeout,
	})
	if err != nil {
		return err
	}
	defer cli.Close()
	var waiting sync.Once
	sem, err := rebootlock.New(cli, cfg.group, rebootlock.Options{
		Prefix:    cfg.prefix,
		Logger:    slog.New(slog.DiscardHandler),
		OpTimeout: cfg.timeout,
		// The CLI does not stay to keep a lock alive: locks it takes show as rebooting,
		// then stale once the deadline passes, unless the daemon takes them over.
		LivenessTTL: -1,
		// lock --wait says once that it waits, so a person (or a script) sees why it blocks.
		Waiting: func() {
			waiting.Do(func() { fmt.Fprintf(stdout, "waiting: group %s is full; waiting for a slot\n", cfg.group) })
		},
	})
	if err != nil {
		return err
	}
	defer sem.Close()

	switch cfg.command {
	case "status":
		st, err := sem.Status(ctx)
		if err != nil {
			return err
		}
		return printLockStatus(stdout, st, cfg.asJSON)
	case "lock":
		h := rebootlock.Holder{ID: id, Via: "updatectl"}
		h.Hostname, _ = os.Hostname()
		if b, err := os.ReadFile(cfg.bootIDFile); err == nil {
			h.BootID = strings.TrimSpace(string(b))
		}
		if cfg.wait {
			err = sem.Lock(ctx, h)
		} else {
			err = sem.TryLock(ctx, h)
		}
		if errors.Is(err, rebootlock.ErrFull) {
			return fmt.Errorf("%w; run with --wait to wait for a slot, or see `updatectl lock status`", err)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "locked: %s holds a slot in group %s\n", id, cfg.group)
	case "unlock":
		if err := sem.Unlock(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "unlocked: %s holds no slot in group %s\n", id, cfg.group)
	case "set-max":
		old, err := sem.SetMax(ctx, maxArg)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Old-Max: %d\nMax: %d\n", old, maxArg)
	case "reclaim":
		if err := sem.Reclaim(ctx, cfg.args[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "reclaimed: the slot of %s in group %s is free\n", cfg.args[0], cfg.group)
	}
	return nil
}

// holderJSON is a holder in `status --json`.
type holderJSON struct {
	rebootlock.Holder
	AgeSeconds     int64  `json:"age_seconds"`
	Alive          bool   `json:"alive"`
	WithinDeadline bool   `json:"within_deadline"`
	Stale          bool   `json:"stale"`
	Malformed      string `json:"malformed,omitempty"`
}

type statusJSON struct {
	Group       string       `json:"group"`
	Max         int          `json:"max"`
	Available   int          `json:"available"`
	ConfigError string       `json:"config_error,omitempty"`
	Holders     []holderJSON `json:"holders"`
}

func liveness(h rebootlock.HolderStatus) string {
	switch {
	case h.Alive:
		return "alive"
	case h.WithinDeadline:
		return "rebooting"
	default:
		return "STALE"
	}
}

func printLockStatus(w io.Writer, st rebootlock.Status, asJSON bool) error {
	avail := max(st.Max-len(st.Holders), 0)
	if asJSON {
		out := statusJSON{Group: st.Group, Max: st.Max, Available: avail, ConfigError: st.ConfigError, Holders: []holderJSON{}}
		for _, h := range st.Holders {
			out.Holders = append(out.Holders, holderJSON{
				Holder: h.Holder, AgeSeconds: int64(h.Age / time.Second),
				Alive: h.Alive, WithinDeadline: h.WithinDeadline, Stale: h.Stale, Malformed: h.Malformed,
			})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintf(w, "Group: %s\nAvailable: %d\nMax: %d\n", st.Group, avail, st.Max)
	if st.ConfigError != "" {
		fmt.Fprintf(w, "CONFIG ERROR: %s (no slots are granted until `updatectl lock set-max N`)\n", st.ConfigError)
	}
	if len(st.Holders) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHOSTNAME\tVIA\tAGE\tLIVENESS\tFROM\tTO")
	stale := 0
	for _, h := range st.Holders {
		if h.Malformed != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\tMALFORMED\t-\t-\n", h.ID)
			continue
		}
		if h.Stale {
			stale++
		}
		age := "-"
		if h.Age > 0 {
			age = h.Age.Truncate(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.ID, dash(h.Hostname), dash(h.Via), age, liveness(h), dash(h.FromVersion), dash(h.ToVersion))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, h := range st.Holders {
		if h.Malformed != "" {
			fmt.Fprintf(w, "\nMALFORMED holder %s (counted as a holder): %s\n", h.ID, h.Malformed)
		}
	}
	if stale > 0 {
		fmt.Fprintf(w, "\n%d STALE holder(s): the host did not come back within its reboot deadline.\n"+
			"Check the host; free its slot with `updatectl lock reclaim ID`.\n", stale)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

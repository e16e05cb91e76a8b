package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-os/switchyard/rebootlock/strategy"
)

// FlatcarAppID is the Omaha application id of Flatcar Container Linux, the default.
const FlatcarAppID = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"

// Default file locations. Only cmd/update-engine uses them.
const (
	ReleaseFile        = "/usr/share/flatcar/release"
	FlatcarConfigFile  = "/etc/flatcar/update.conf"
	SwitchyardConfFile = "/etc/switchyard/update.conf"
)

// Settings of DBUS besides a bus address: the system bus (a missing one is logged, not
// fatal), or no D-Bus service at all.
const (
	DBusSystem = "system"
	DBusOff    = "off"
)

// Config is everything update-engine is told by its files and flags.
type Config struct {
	Server       string // Omaha endpoint, POST target
	Group        string // sent as app@track
	AppID        string
	Version      string // the running version
	Board        string // amd64-usr, arm64-usr
	MachineAlias string
	MachineID    string // empty: read MachineIDFile
	OEM          string
	OEMVersion   string

	MachineIDFile string
	BootIDFile    string

	CAFile         string // extra CA for the server; empty: system roots
	ClientCertFile string
	ClientKeyFile  string
	AllowPlainHTTP bool // http:// only for a loopback server and only when this is set

	TUFURL      string // TUF repository base; empty: <server origin>/tuf/
	TUFRootFile string // the trusted root.json shipped with the image
	PayloadKeys []string
	BuildTime   time.Time // the clock must not be before this

	StateDir      string
	ControlSocket string
	MetricsAddr   string // loopback host:port; empty: no metrics listener
	DBus          string // DBusSystem, DBusOff or a D-Bus address for com.coreos.update1

	Disk            string // block device or image file
	ActivePartition string // label (USR-A) or number; empty: the partition backing /usr

	FirstCheckDelay time.Duration
	FirstCheckFuzz  time.Duration
	CheckInterval   time.Duration
	CheckFuzz       time.Duration
	MaxBackoff      time.Duration
	MinPollInterval time.Duration
	MaxPollInterval time.Duration
	HTTPTimeout     time.Duration

	RebootStrategy     strategy.Strategy
	RebootWindows      []string // each "Mon,Tue 02:00 1h [Zone]"; see rebootlock
	RebootWindowStart  string   // Flatcar's "Thu 23:00"
	RebootWindowLength time.Duration
	LockGroup          string
	EtcdEndpoints      []string
	EtcdCAFile         string
	EtcdCertFile       string
	EtcdKeyFile        string
	FleetLockURL       string
	RebootCommand      []string // run to reboot; default systemctl reboot
	PreRebootHook      []string // run (no shell) before the reboot; its failure postpones it
	PostRebootHook     []string // run (no shell) once the update is confirmed after the reboot
	RebootHookTimeout  time.Duration

	// DeltaUpdates sends delta_okay="true": the server may offer a delta payload from the
	// running version (default on).
	DeltaUpdates bool

	// XZDecoder picks the REPLACE_XZ decoder: "auto" (xz-utils when installed, else Go),
	// "go" or "xz-utils".
	XZDecoder string

	HealthCommands  [][]string // each run without a shell; all must exit 0
	HealthUnits     []string   // systemd units that must be active
	HealthMinUptime time.Duration
	HealthTimeout   time.Duration

	// Unknown lists keys the files set that this version does not know (for a warning).
	Unknown []string
}

// Default returns the configuration before any file is read.
func Default() Config {
	return Config{
		Server:            "https://public.update.flatcar-linux.net/v1/update/",
		Group:             "stable",
		AppID:             FlatcarAppID,
		MachineIDFile:     "/etc/machine-id",
		BootIDFile:        "/proc/sys/kernel/random/boot_id",
		TUFRootFile:       "/etc/switchyard/tuf-root.json",
		PayloadKeys:       []string{"/etc/switchyard/payload-keys"},
		StateDir:          "/var/lib/switchyard",
		ControlSocket:     "/run/switchyard/update-engine.sock",
		DBus:              DBusSystem,
		FirstCheckDelay:   7 * time.Minute,
		FirstCheckFuzz:    10 * time.Minute,
		CheckInterval:     45 * time.Minute,
		CheckFuzz:         10 * time.Minute,
		MaxBackoff:        4 * time.Hour,
		MinPollInterval:   5 * time.Minute,
		MaxPollInterval:   24 * time.Hour,
		HTTPTimeout:       90 * time.Second,
		RebootStrategy:    strategy.Reboot,
		LockGroup:         "default",
		RebootCommand:     []string{"systemctl", "reboot"},
		RebootHookTimeout: 15 * time.Minute,
		HealthMinUptime:   45 * time.Second,
		HealthTimeout:     2 * time.Minute,
		XZDecoder:         "auto",
		DeltaUpdates:      true,
	}
}

type setter func(c *Config, v string) error

func str(f func(*Config) *string) setter {
	return func(c *Config, v string) error { *f(c) = v; return nil }
}

func dur(f func(*Config) *time.Duration) setter {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		if d < 0 {
			return errors.New("negative duration")
		}
		*f(c) = d
		return nil
	}
}

// command sets a command line split on blanks (no shell); an empty value means none.
func command(f func(*Config) *[]string) setter {
	return func(c *Config, v string) error { *f(c) = strings.Fields(v); return nil }
}

func list(f func(*Config) *[]string) setter {
	return func(c *Config, v string) error { *f(c) = splitList(v); return nil }
}

func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// Key documents one configuration key.
type Key struct {
	Name string
	Help string
	set  setter
}

// Keys returns every key the files may set, Flatcar's and ours, in a fresh slice.
func Keys() []Key {
	return []Key{
		{"SERVER", "Omaha endpoint (POST)", str(func(c *Config) *string { return &c.Server })},
		{"GROUP", "group, sent as track", str(func(c *Config) *string { return &c.Group })},
		{"FLATCAR_RELEASE_APPID", "Omaha app id", str(func(c *Config) *string { return &c.AppID })},
		{"FLATCAR_RELEASE_VERSION", "the running version", str(func(c *Config) *string { return &c.Version })},
		{"FLATCAR_RELEASE_BOARD", "board (amd64-usr, arm64-usr)", str(func(c *Config) *string { return &c.Board })},
		{"MACHINE_ALIAS", "machine alias sent to the server", str(func(c *Config) *string { return &c.MachineAlias })},
		{"MACHINE_ID", "machine id (default: read MACHINE_ID_FILE)", str(func(c *Config) *string { return &c.MachineID })},
		{"MACHINE_ID_FILE", "file holding the machine id", str(func(c *Config) *string { return &c.MachineIDFile })},
		{"BOOT_ID_FILE", "file holding the boot id", str(func(c *Config) *string { return &c.BootIDFile })},
		{"OEM", "OEM id", str(func(c *Config) *string { return &c.OEM })},
		{"OEM_VERSION", "OEM version", str(func(c *Config) *string { return &c.OEMVersion })},
		{"SERVER_CA", "PEM CA bundle for the server (default: system roots)", str(func(c *Config) *string { return &c.CAFile })},
		{"CLIENT_CERT", "PEM client certificate", str(func(c *Config) *string { return &c.ClientCertFile })},
		{"CLIENT_KEY", "PEM client key", str(func(c *Config) *string { return &c.ClientKeyFile })},
		{"ALLOW_PLAIN_HTTP", "true: allow http:// for a loopback server", func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			c.AllowPlainHTTP = b
			return err
		}},
		{"TUF_URL", "TUF repository base URL (default: <server>/tuf/)", str(func(c *Config) *string { return &c.TUFURL })},
		{"TUF_ROOT", "trusted TUF root.json", str(func(c *Config) *string { return &c.TUFRootFile })},
		{"PAYLOAD_KEYS", "payload public keys: PEM files or directories, comma-separated", list(func(c *Config) *[]string { return &c.PayloadKeys })},
		{"BUILD_TIME", "build time (RFC 3339 or Unix seconds); the clock must not be before it", func(c *Config, v string) error {
			t, err := parseTime(v)
			c.BuildTime = t
			return err
		}},
		{"STATE_DIR", "state directory", str(func(c *Config) *string { return &c.StateDir })},
		{"CONTROL_SOCKET", "unix socket of the local control API", str(func(c *Config) *string { return &c.ControlSocket })},
		{"DBUS", "bus for the com.coreos.update1 D-Bus service: system, off, or a D-Bus address", func(c *Config, v string) error {
			if v != DBusSystem && v != DBusOff && !strings.Contains(v, ":") {
				return fmt.Errorf("want system, off or a D-Bus address (unix:path=...), not %q", v)
			}
			c.DBus = v
			return nil
		}},
		{"METRICS_ADDR", "loopback address for Prometheus metrics (empty: off)", str(func(c *Config) *string { return &c.MetricsAddr })},
		{"DISK", "disk (block device or image file) holding USR-A and USR-B", str(func(c *Config) *string { return &c.Disk })},
		{"ACTIVE_PARTITION", "active USR partition label or number (image files)", str(func(c *Config) *string { return &c.ActivePartition })},
		{"FIRST_CHECK_DELAY", "delay of the first check after start", dur(func(c *Config) *time.Duration { return &c.FirstCheckDelay })},
		{"FIRST_CHECK_FUZZ", "jitter range of the first check", dur(func(c *Config) *time.Duration { return &c.FirstCheckFuzz })},
		{"CHECK_INTERVAL", "interval between checks", dur(func(c *Config) *time.Duration { return &c.CheckInterval })},
		{"CHECK_FUZZ", "jitter range of the interval", dur(func(c *Config) *time.Duration { return &c.CheckFuzz })},
		{"MAX_BACKOFF", "longest interval after server errors", dur(func(c *Config) *time.Duration { return &c.MaxBackoff })},
		{"MIN_POLL_INTERVAL", "lower bound on the server's PollInterval", dur(func(c *Config) *time.Duration { return &c.MinPollInterval })},
		{"MAX_POLL_INTERVAL", "upper bound on the server's PollInterval", dur(func(c *Config) *time.Duration { return &c.MaxPollInterval })},
		{"HTTP_TIMEOUT", "timeout of one Omaha or TUF request", dur(func(c *Config) *time.Duration { return &c.HTTPTimeout })},
		{"REBOOT_STRATEGY", "etcd-lock, fleetlock, reboot, off or best-effort (etcd-lock with LOCKSMITHD_ENDPOINT, else reboot)", func(c *Config, v string) error {
			s, err := strategy.Parse(v)
			if err != nil {
				return err
			}
			c.RebootStrategy = s
			return nil
		}},
		{"REBOOT_WINDOWS", "reboot windows, ';'-separated, each \"Mon,Tue 02:00 1h [Zone]\"", func(c *Config, v string) error {
			c.RebootWindows = nil
			for _, w := range strings.Split(v, ";") {
				if w = strings.TrimSpace(w); w != "" {
					c.RebootWindows = append(c.RebootWindows, w)
				}
			}
			return nil
		}},
		{"LOCKSMITHD_REBOOT_WINDOW_START", "Flatcar reboot window start (\"Thu 23:00\")", str(func(c *Config) *string { return &c.RebootWindowStart })},
		{"LOCKSMITHD_REBOOT_WINDOW_LENGTH", "Flatcar reboot window length", dur(func(c *Config) *time.Duration { return &c.RebootWindowLength })},
		{"REBOOT_WINDOW_START", "alias of LOCKSMITHD_REBOOT_WINDOW_START", str(func(c *Config) *string { return &c.RebootWindowStart })},
		{"REBOOT_WINDOW_LENGTH", "alias of LOCKSMITHD_REBOOT_WINDOW_LENGTH", dur(func(c *Config) *time.Duration { return &c.RebootWindowLength })},
		{"LOCKSMITHD_GROUP", "reboot lock group", str(func(c *Config) *string { return &c.LockGroup })},
		{"LOCKSMITHD_ENDPOINT", "etcd endpoints, comma-separated", list(func(c *Config) *[]string { return &c.EtcdEndpoints })},
		{"ETCD_ENDPOINTS", "alias of LOCKSMITHD_ENDPOINT", list(func(c *Config) *[]string { return &c.EtcdEndpoints })},
		{"LOCKSMITHD_ETCD_CAFILE", "etcd CA", str(func(c *Config) *string { return &c.EtcdCAFile })},
		{"LOCKSMITHD_ETCD_CERTFILE", "etcd client certificate", str(func(c *Config) *string { return &c.EtcdCertFile })},
		{"LOCKSMITHD_ETCD_KEYFILE", "etcd client key", str(func(c *Config) *string { return &c.EtcdKeyFile })},
		{"FLEETLOCK_URL", "FleetLock server base URL", str(func(c *Config) *string { return &c.FleetLockURL })},
		{"DELTA_UPDATES", "(Switchyard) true (default): ask for delta payloads (delta_okay); false: always the full payload", func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			c.DeltaUpdates = b
			return err
		}},
		{"XZ_DECODER", "REPLACE_XZ decoder: auto (xz-utils when installed), go, or xz-utils", func(c *Config, v string) error {
			switch v {
			case "auto", "go", "xz-utils":
				c.XZDecoder = v
				return nil
			}
			return fmt.Errorf("unknown decoder %q (auto, go or xz-utils)", v)
		}},
		{"REBOOT_COMMAND", "command (no shell) that reboots the host; default \"systemctl reboot\"", func(c *Config, v string) error {
			f := strings.Fields(v)
			if len(f) == 0 {
				return errors.New("empty command")
			}
			c.RebootCommand = f
			return nil
		}},
		{"PRE_REBOOT_HOOK", "(Switchyard) command (no shell) run before the reboot, e.g. a drain; failing postpones the reboot", command(func(c *Config) *[]string { return &c.PreRebootHook })},
		{"POST_REBOOT_HOOK", "(Switchyard) command (no shell) run once the update is confirmed after the reboot, e.g. an uncordon", command(func(c *Config) *[]string { return &c.PostRebootHook })},
		{"REBOOT_HOOK_TIMEOUT", "(Switchyard) time each reboot hook gets before its process group is killed", func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return err
			}
			if d <= 0 {
				return errors.New("must be positive")
			}
			c.RebootHookTimeout = d
			return nil
		}},
		{"HEALTH_COMMANDS", "';'-separated commands (no shell) that must exit 0 after boot", func(c *Config, v string) error {
			c.HealthCommands = nil
			for _, cmd := range strings.Split(v, ";") {
				if f := strings.Fields(cmd); len(f) > 0 {
					c.HealthCommands = append(c.HealthCommands, f)
				}
			}
			return nil
		}},
		{"HEALTH_UNITS", "systemd units that must be active after boot", list(func(c *Config) *[]string { return &c.HealthUnits })},
		{"HEALTH_MIN_UPTIME", "minimum uptime before the health checks run", dur(func(c *Config) *time.Duration { return &c.HealthMinUptime })},
		{"HEALTH_TIMEOUT", "time the health checks get before they count as failed", dur(func(c *Config) *time.Duration { return &c.HealthTimeout })},
	}
}

// keysByName is built per call (no package-level mutable state).
func keysByName() map[string]setter {
	keys := Keys()
	m := make(map[string]setter, len(keys))
	for _, k := range keys {
		m[k.Name] = k.set
	}
	return m
}

// ignored reports whether key is one Flatcar files carry that update-engine knowingly ignores.
func ignored(key string) bool {
	switch key {
	case "DOWNLOAD_USER", "DOWNLOAD_PASSWORD", "PCR_POLICY_SERVER",
		"FLATCAR_RELEASE_ID", "ID", "VERSION_ID", "NAME":
		return true
	}
	return false
}

func parseTime(v string) (time.Time, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Parse(time.RFC3339, v)
}

// Apply sets the assignments on c in order; the last assignment of a key wins. name is the
// file name for error messages.
func (c *Config) Apply(name string, as []Assignment) error {
	set := keysByName()
	for _, a := range as {
		f, ok := set[a.Key]
		if !ok {
			if !ignored(a.Key) {
				c.Unknown = append(c.Unknown, a.Key)
			}
			continue
		}
		if err := f(c, a.Value); err != nil {
			return fmt.Errorf("config: %s:%d: %s: %w", name, a.Line, a.Key, err)
		}
	}
	return nil
}

// Set sets one key, as a flag would.
func (c *Config) Set(key, value string) error {
	return c.Apply("flag", []Assignment{{Key: key, Value: value}})
}

// Load reads the files in order onto c. A missing file is skipped; an unreadable or malformed
// one is an error.
func (c *Config) Load(files ...string) error {
	for _, name := range files {
		f, err := os.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		as, err := Parse(f, name)
		f.Close()
		if err != nil {
			return err
		}
		if err := c.Apply(name, as); err != nil {
			return err
		}
	}
	sort.Strings(c.Unknown)
	return nil
}

// Validate checks what can be checked without touching the host.
func (c *Config) Validate() error {
	var errs []error
	if c.Server == "" {
		errs = append(errs, errors.New("SERVER is empty"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("GROUP is empty"))
	}
	if c.CheckInterval <= 0 {
		errs = append(errs, errors.New("CHECK_INTERVAL must be positive"))
	}
	if c.HTTPTimeout <= 0 {
		// 0 would leave Omaha and TUF requests unbounded: never what an operator means.
		errs = append(errs, errors.New("HTTP_TIMEOUT must be above zero (a timeout cannot be turned off)"))
	}
	if c.MaxBackoff < c.CheckInterval {
		errs = append(errs, errors.New("MAX_BACKOFF is below CHECK_INTERVAL"))
	}
	if c.MinPollInterval > c.MaxPollInterval {
		errs = append(errs, errors.New("MIN_POLL_INTERVAL is above MAX_POLL_INTERVAL"))
	}
	if (c.ClientCertFile == "") != (c.ClientKeyFile == "") {
		errs = append(errs, errors.New("CLIENT_CERT and CLIENT_KEY go together"))
	}
	if (c.RebootWindowStart == "") != (c.RebootWindowLength == 0) {
		errs = append(errs, errors.New("REBOOT_WINDOW_START and REBOOT_WINDOW_LENGTH go together"))
	}
	switch c.RebootStrategy {
	case strategy.EtcdLock:
		if len(c.EtcdEndpoints) == 0 {
			errs = append(errs, errors.New("REBOOT_STRATEGY=etcd-lock needs LOCKSMITHD_ENDPOINT"))
		}
	case strategy.FleetLock:
		if c.FleetLockURL == "" {
			errs = append(errs, errors.New("REBOOT_STRATEGY=fleetlock needs FLEETLOCK_URL"))
		}
	}
	if c.RebootStrategy == strategy.Off && (len(c.PreRebootHook) > 0) {
		errs = append(errs, errors.New("PRE_REBOOT_HOOK is set but REBOOT_STRATEGY=off never reboots"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// ResolvedRebootStrategy is the strategy the daemon runs: REBOOT_STRATEGY with best-effort
// resolved to etcd-lock when an etcd endpoint is configured, otherwise to reboot.
func (c *Config) ResolvedRebootStrategy() strategy.Strategy {
	return strategy.Resolve(c.RebootStrategy, len(c.EtcdEndpoints) > 0)
}

// TUFBaseURL is the TUF repository's base URL: TUF_URL when set, otherwise the Omaha
// endpoint's origin with the path /tuf/ (where omaha-server serves it).
func (c *Config) TUFBaseURL() (string, error) {
	if c.TUFURL != "" {
		return c.TUFURL, nil
	}
	u, err := url.Parse(c.Server)
	if err != nil {
		return "", fmt.Errorf("config: SERVER: %w", err)
	}
	if u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("config: SERVER %q is not an absolute URL", c.Server)
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/tuf/"}).String(), nil
}

// OEMReleaseFiles are where Flatcar keeps the OEM's ID and VERSION_ID, in order.
func OEMReleaseFiles() []string {
	return []string{"/etc/oem-release", "/usr/share/oem/oem-release"}
}

// ReadOEM returns ID and VERSION_ID from the first readable, well-formed OEM release file
// of files (OEMReleaseFiles on a host); both empty when there is none.
func ReadOEM(files ...string) (id, version string) {
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		as, err := Parse(f, name)
		f.Close()
		if err != nil {
			continue
		}
		for _, a := range as {
			switch a.Key {
			case "ID":
				id = a.Value
			case "VERSION_ID":
				version = a.Value
			}
		}
		return id, version
	}
	return "", ""
}

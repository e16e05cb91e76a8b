package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/rebootlock/strategy"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Assignment
		wantErr bool
	}{
		{name: "empty", in: "", want: nil},
		{name: "comments and blanks", in: "# c\n\n   # indented\n", want: nil},
		{name: "simple", in: "GROUP=beta\n", want: []Assignment{{"GROUP", "beta", 1}}},
		{name: "spaces around", in: "  GROUP = beta  \n", want: []Assignment{{"GROUP", "beta", 1}}},
		{name: "export", in: "export SERVER=https://x/v1/update/\n", want: []Assignment{{"SERVER", "https://x/v1/update/", 1}}},
		{name: "double quotes", in: `GROUP="a b # c"`, want: []Assignment{{"GROUP", "a b # c", 1}}},
		{name: "double quote escapes", in: `GROUP="a\"b\\c\n"`, want: []Assignment{{"GROUP", `a"b\c\n`, 1}}},
		{name: "single quotes", in: `GROUP='a "b"'`, want: []Assignment{{"GROUP", `a "b"`, 1}}},
		{name: "trailing comment", in: "GROUP=beta # the beta\n", want: []Assignment{{"GROUP", "beta", 1}}},
		{name: "hash inside value", in: "GROUP=be#ta\n", want: []Assignment{{"GROUP", "be#ta", 1}}},
		{name: "crlf", in: "GROUP=beta\r\nSERVER=s\r\n", want: []Assignment{{"GROUP", "beta", 1}, {"SERVER", "s", 2}}},
		{name: "empty value", in: "GROUP=\n", want: []Assignment{{"GROUP", "", 1}}},
		{name: "equals in value", in: "X=a=b\n", want: []Assignment{{"X", "a=b", 1}}},
		{name: "repeat", in: "G=a\nG=b\n", want: []Assignment{{"G", "a", 1}, {"G", "b", 2}}},
		{name: "no equals", in: "GROUP\n", wantErr: true},
		{name: "bad key", in: "1GROUP=x\n", wantErr: true},
		{name: "key with dash", in: "A-B=x\n", wantErr: true},
		{name: "unterminated double", in: `G="abc`, wantErr: true},
		{name: "unterminated single", in: `G='abc`, wantErr: true},
		{name: "junk after quote", in: `G="a"b`, wantErr: true},
		{name: "stray quote", in: `G=a"b`, wantErr: true},
		{name: "long line", in: "G=" + strings.Repeat("x", MaxLineSize), wantErr: true},
		{name: "huge file", in: strings.Repeat("# comment\n", MaxFileSize/10+1), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in), "test.conf")
			if tt.wantErr {
				if !errors.Is(err, ErrSyntax) {
					t.Fatalf("Parse = %v, %v; want a syntax error", got, err)
				}
				if !strings.HasPrefix(err.Error(), "config: test.conf:") {
					t.Errorf("error %q does not name the file", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestLoadOrderAndKeys(t *testing.T) {
	dir := t.TempDir()
	flatcar := filepath.Join(dir, "flatcar.conf")
	ours := filepath.Join(dir, "switchyard.conf")
	writeFile(t, flatcar, `# Flatcar's file
SERVER=https://flatcar.example/v1/update/
GROUP=beta
REBOOT_STRATEGY=etcd-lock
LOCKSMITHD_REBOOT_WINDOW_START="Thu 23:00"
LOCKSMITHD_REBOOT_WINDOW_LENGTH=1h30m
LOCKSMITHD_ENDPOINT=https://etcd1:2379,https://etcd2:2379
DOWNLOAD_USER=ignored
`)
	writeFile(t, ours, `GROUP=prod-eu
CHECK_INTERVAL=30m
HEALTH_COMMANDS=/bin/true ; /usr/bin/test -e /etc/os-release
HEALTH_UNITS=sshd.service, containerd.service
PAYLOAD_KEYS=/a.pem,/b.pem
BUILD_TIME=2026-01-02T03:04:05Z
DBUS=unix:path=/run/test/bus
SOMETHING_NEW=1
`)
	c := Default()
	if err := c.Load(flatcar, filepath.Join(dir, "missing.conf"), ours); err != nil {
		t.Fatal(err)
	}
	if err := c.Set("GROUP", "from-flag"); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"server", c.Server, "https://flatcar.example/v1/update/"},
		{"group", c.Group, "from-flag"},
		{"strategy", c.RebootStrategy, strategy.EtcdLock},
		{"window start", c.RebootWindowStart, "Thu 23:00"},
		{"window length", c.RebootWindowLength, 90 * time.Minute},
		{"etcd", c.EtcdEndpoints, []string{"https://etcd1:2379", "https://etcd2:2379"}},
		{"interval", c.CheckInterval, 30 * time.Minute},
		{"health commands", c.HealthCommands, [][]string{{"/bin/true"}, {"/usr/bin/test", "-e", "/etc/os-release"}}},
		{"health units", c.HealthUnits, []string{"sshd.service", "containerd.service"}},
		{"payload keys", c.PayloadKeys, []string{"/a.pem", "/b.pem"}},
		{"build time", c.BuildTime, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"unknown", c.Unknown, []string{"SOMETHING_NEW"}},
		{"dbus", c.DBus, "unix:path=/run/test/bus"},
		{"default dbus", Default().DBus, DBusSystem},
		{"default first delay", c.FirstCheckDelay, 7 * time.Minute},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.name, ck.got, ck.want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// TestKeys checks that Keys hands out a fresh slice each call, that every name is unique
// and settable, and that no known key is also on the ignored list.
func TestKeys(t *testing.T) {
	first := Keys()
	first[0] = Key{Name: "CHANGED"}
	second := Keys()
	if second[0].Name != "SERVER" {
		t.Fatalf("Keys()[0] = %q after a caller changed its own copy, want SERVER", second[0].Name)
	}
	seen := map[string]bool{}
	for _, k := range second {
		if seen[k.Name] {
			t.Errorf("key %s listed twice", k.Name)
		}
		seen[k.Name] = true
		if k.set == nil || k.Help == "" {
			t.Errorf("key %s has no setter or no help", k.Name)
		}
		if ignored(k.Name) {
			t.Errorf("key %s is both known and ignored", k.Name)
		}
	}
}

func TestApplyErrors(t *testing.T) {
	tests := []struct{ key, value string }{
		{"CHECK_INTERVAL", "soon"},
		{"CHECK_INTERVAL", "-5m"},
		{"REBOOT_STRATEGY", "whenever"},
		{"ALLOW_PLAIN_HTTP", "perhaps"},
		{"BUILD_TIME", "yesterday"},
		{"DBUS", "session"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			c := Default()
			err := c.Set(tt.key, tt.value)
			if err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("Set(%s, %s) = %v, want an error naming the key", tt.key, tt.value, err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"no server", func(c *Config) { c.Server = "" }, false},
		{"etcd without endpoints", func(c *Config) { c.RebootStrategy = strategy.EtcdLock }, false},
		{"fleetlock without url", func(c *Config) { c.RebootStrategy = strategy.FleetLock }, false},
		{"cert without key", func(c *Config) { c.ClientCertFile = "/c.pem" }, false},
		{"window without length", func(c *Config) { c.RebootWindowStart = "Thu 23:00" }, false},
		{"backoff below interval", func(c *Config) { c.MaxBackoff = time.Minute }, false},
		{"best-effort without endpoints", func(c *Config) { c.RebootStrategy = strategy.BestEffort }, true},
		{"pre-reboot hook under off", func(c *Config) { c.RebootStrategy = strategy.Off; c.PreRebootHook = []string{"drain"} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.edit(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestLoadMalformedFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "bad.conf")
	writeFile(t, name, "GROUP=ok\nthis is not an assignment\n")
	c := Default()
	err := c.Load(name)
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != 2 {
		t.Fatalf("Load = %v, want a SyntaxError on line 2", err)
	}
	if c.Group != "stable" {
		t.Errorf("a malformed file changed the config: GROUP=%q", c.Group)
	}
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRebootStrategyNames: REBOOT_STRATEGY takes the strategy package's names, plus
// CoreOS's old best-effort, which ResolvedRebootStrategy turns into etcd-lock when an etcd
// endpoint is configured and into reboot otherwise.
func TestRebootStrategyNames(t *testing.T) {
	for in, want := range map[string]strategy.Strategy{
		"etcd-lock":   strategy.EtcdLock,
		"fleetlock":   strategy.FleetLock,
		"reboot":      strategy.Reboot,
		"off":         strategy.Off,
		"":            strategy.Reboot,
		"best-effort": strategy.BestEffort,
	} {
		c := Default()
		c.RebootStrategy = "unset"
		if err := c.Set("REBOOT_STRATEGY", in); err != nil || c.RebootStrategy != want {
			t.Errorf("REBOOT_STRATEGY=%q: %q, %v; want %q", in, c.RebootStrategy, err, want)
		}
	}
	c := Default()
	if err := c.Set("REBOOT_STRATEGY", "Etcd-Lock"); err == nil {
		t.Error("REBOOT_STRATEGY=Etcd-Lock accepted")
	}
	for _, tt := range []struct {
		endpoints string
		want      strategy.Strategy
	}{{"", strategy.Reboot}, {"https://etcd-1:2379,https://etcd-2:2379", strategy.EtcdLock}} {
		c := Default()
		c.Set("REBOOT_STRATEGY", "best-effort")
		if err := c.Set("LOCKSMITHD_ENDPOINT", tt.endpoints); err != nil {
			t.Fatal(err)
		}
		if got := c.ResolvedRebootStrategy(); got != tt.want {
			t.Errorf("best-effort with LOCKSMITHD_ENDPOINT=%q resolves to %s, want %s", tt.endpoints, got, tt.want)
		}
	}
}

func TestRebootHookKeys(t *testing.T) {
	c := Default()
	if c.RebootHookTimeout <= 0 {
		t.Fatalf("default REBOOT_HOOK_TIMEOUT %s", c.RebootHookTimeout)
	}
	for _, kv := range [][2]string{
		{"PRE_REBOOT_HOOK", "/usr/local/bin/drain-node  --grace 60"},
		{"POST_REBOOT_HOOK", "/usr/local/bin/uncordon-node"},
		{"REBOOT_HOOK_TIMEOUT", "20m"},
	} {
		if err := c.Set(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(c.PreRebootHook, []string{"/usr/local/bin/drain-node", "--grace", "60"}) ||
		!slices.Equal(c.PostRebootHook, []string{"/usr/local/bin/uncordon-node"}) || c.RebootHookTimeout != 20*time.Minute {
		t.Errorf("hooks %q %q %s", c.PreRebootHook, c.PostRebootHook, c.RebootHookTimeout)
	}
	for _, bad := range []string{"0s", "-1m", "soon"} {
		if err := c.Set("REBOOT_HOOK_TIMEOUT", bad); err == nil || !strings.Contains(err.Error(), "REBOOT_HOOK_TIMEOUT") {
			t.Errorf("REBOOT_HOOK_TIMEOUT=%s: %v", bad, err)
		}
	}
}

// TestDeltaUpdates: delta payloads are asked for by default, and DELTA_UPDATES turns that
// off (or on again); a value that is not a boolean is an error naming the key.
func TestDeltaUpdates(t *testing.T) {
	c := Default()
	if !c.DeltaUpdates {
		t.Fatal("DeltaUpdates is off by default")
	}
	for _, tc := range []struct {
		value string
		want  bool
	}{{"false", false}, {"true", true}, {"0", false}} {
		if err := c.Set("DELTA_UPDATES", tc.value); err != nil || c.DeltaUpdates != tc.want {
			t.Errorf("DELTA_UPDATES=%s: %v, DeltaUpdates %v", tc.value, err, c.DeltaUpdates)
		}
	}
	if err := c.Set("DELTA_UPDATES", "sometimes"); err == nil || !strings.Contains(err.Error(), "DELTA_UPDATES") {
		t.Errorf("DELTA_UPDATES=sometimes: %v", err)
	}
}

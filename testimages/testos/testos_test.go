package testos

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseCmdline(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    Cmdline
		wantErr bool
	}{
		{name: "defaults", in: "console=ttyS0 panic=-1\n", want: Cmdline{Action: ActionPowerOff}},
		{
			name: "everything",
			in:   "console=ttyS0 switchyard.fetch=http://10.0.2.100/a switchyard.fetch=http://10.0.2.2:8080/ switchyard.server=http://10.0.2.100/v1/update/ switchyard.group=beta switchyard.action=wait",
			want: Cmdline{Fetch: []string{"http://10.0.2.100/a", "http://10.0.2.2:8080/"}, Server: "http://10.0.2.100/v1/update/", Group: "beta", Action: ActionWait},
		},
		{name: "quoted", in: `switchyard.group="a b" switchyard.action=reboot`, want: Cmdline{Group: "a b", Action: ActionReboot}},
		{name: "control character", in: "switchyard.server=a\x01b", wantErr: true},
		{name: "unbalanced quote", in: `switchyard.group="a b`, wantErr: true},
		{name: "bad action", in: "switchyard.action=explode", wantErr: true},
		{name: "conf lines", in: "switchyard.conf=REBOOT_STRATEGY=off switchyard.conf=ETCD_ENDPOINTS=http://10.0.2.100:2379", want: Cmdline{Action: ActionPowerOff, Conf: []string{"REBOOT_STRATEGY=off", "ETCD_ENDPOINTS=http://10.0.2.100:2379"}}},
		{name: "conf without value", in: "switchyard.conf=REBOOT_STRATEGY", wantErr: true},
		{name: "conf bad key", in: "switchyard.conf=reboot-strategy=off", wantErr: true},
		{name: "empty fetch", in: "switchyard.fetch=", wantErr: true},
		{name: "too long", in: strings.Repeat("x", maxCmdline+1), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCmdline(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ErrCmdline) {
					t.Fatalf("err = %v, want ErrCmdline", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestUpdateConf(t *testing.T) {
	if got := (Cmdline{}).UpdateConf(); got != "" {
		t.Fatalf("no server gave %q", got)
	}
	got := Cmdline{Server: "http://10.0.2.100/v1/update/", Group: "beta", Conf: []string{"REBOOT_STRATEGY=off"}}.UpdateConf()
	if want := "SERVER=http://10.0.2.100/v1/update/\nGROUP=beta\nREBOOT_STRATEGY=off\n"; got != want {
		t.Fatalf("UpdateConf = %q, want %q", got, want)
	}
}

func TestParseServices(t *testing.T) {
	got, err := ParseServices("# health first\n/usr/bin/sy-health\n\n  /usr/bin/update-engine -config /etc/switchyard/update.conf  \n")
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"/usr/bin/sy-health"}, {"/usr/bin/update-engine", "-config", "/etc/switchyard/update.conf"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := ParseServices("sy-health\n"); err == nil {
		t.Fatal("a relative command was accepted")
	}
}

func FuzzParseCmdline(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/cmdline-*")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCmdline(s)
		if err != nil {
			return
		}
		switch c.Action {
		case ActionPowerOff, ActionReboot, ActionWait:
		default:
			t.Fatalf("action %q accepted", c.Action)
		}
		for _, l := range c.Conf {
			if k, _, ok := strings.Cut(l, "="); !ok || !confKey(k) {
				t.Fatalf("conf line %q accepted", l)
			}
		}
		if strings.Contains(c.UpdateConf(), "\x00") {
			t.Fatal("NUL in update.conf")
		}
		for _, u := range c.Fetch {
			if u == "" {
				t.Fatal("empty fetch URL accepted")
			}
		}
		if _, err := ParseServices(s); err != nil && !strings.Contains(err.Error(), "absolute") {
			t.Fatalf("ParseServices: %v", err)
		}
	})
}

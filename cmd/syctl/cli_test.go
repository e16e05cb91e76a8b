package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/cmd/internal/usage/usagetest"
	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/signing/keys"
)

// commandPaths is every syctl command that parses flags, by its command words: the
// commands syctl has always had, so none is lost.
var commandPaths = []string{
	"activity", "app create", "app list",
	"channel create", "channel list", "channel promote", "channel set",
	"group create", "group list", "group policy set", "group policy show", "group update",
	"host enroll", "host list", "host remove", "host show",
	"instance list", "instance show",
	"keys init",
	"payload apply", "payload build", "payload sign", "payload verify",
	"release list", "release publish",
	"rollout pause", "rollout resume", "rollout status",
	"token create", "token list", "token revoke",
	"tuf add-target", "tuf init", "tuf publish-root", "tuf remove-target", "tuf rotate-root", "tuf server-status",
	"tuf sign-root", "tuf sign-targets", "tuf status",
}

// leafCommands lists every syctl command that parses flags, by its command words.
func leafCommands() [][]string {
	var leaves [][]string
	for _, p := range commandPaths {
		leaves = append(leaves, strings.Fields(p))
	}
	return leaves
}

// TestCommandTree: the cobra tree holds exactly the commands syctl has (besides cobra's
// completion and help and the hidden man).
func TestCommandTree(t *testing.T) {
	root := newRoot(time.Now)
	var got []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.HasSubCommands() {
			got = append(got, strings.TrimPrefix(c.CommandPath(), "syctl "))
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	sort.Strings(got)
	if !slices.Equal(got, commandPaths) {
		t.Errorf("commands:\n%q\nwant\n%q", got, commandPaths)
	}
}

func TestHelpPrintsOneUsageBlock(t *testing.T) {
	cases := [][]string{{"--help"}, {"-h"}, {"help"}}
	for _, g := range []string{"keys", "tuf", "payload", "app", "release", "channel", "group", "instance", "rollout", "host", "token", "group policy"} {
		cases = append(cases, append(strings.Fields(g), "--help"))
	}
	for _, leaf := range leafCommands() {
		cases = append(cases, append(append([]string{}, leaf...), "--help"), append(append([]string{}, leaf...), "-h"))
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if err := run(context.Background(), args, &out, &errb); err != nil {
				t.Fatalf("run = %v, want nil (exit 0)", err)
			}
			if n := strings.Count(out.String(), "usage:"); n != 1 {
				t.Errorf("stdout has %d usage blocks, want 1:\n%s", n, out.String())
			}
			if errb.Len() != 0 {
				t.Errorf("stderr: %q", errb.String())
			}
			if len(args) > 2 && !strings.Contains(out.String(), "flags:") {
				t.Errorf("a leaf's help lists no flags:\n%s", out.String())
			}
		})
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"release", "publish", "--help"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"syctl release publish --app A", "--file", "--timeout", "--cacert"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("release publish --help lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "http-timeout") {
		t.Errorf("help lists the hidden --http-timeout:\n%s", out.String())
	}
}

func TestUsageErrorIsOneLineWithHint(t *testing.T) {
	tests := []struct {
		args     []string
		wantLine string
		wantHint string
	}{
		{[]string{"release", "publish", "--nope"}, "syctl: unknown flag: --nope", "run 'syctl release publish --help' for usage"},
		{[]string{"instance", "show"}, "syctl: instance show takes one MACHINE-ID", "run 'syctl instance show --help' for usage"},
		{[]string{"app", "frobnicate"}, `syctl: unknown command "app frobnicate"`, "run 'syctl app --help' for usage"},
		{[]string{"payload"}, "syctl: payload needs a command", "run 'syctl payload --help' for usage"},
		{[]string{"bogus"}, `syctl: unknown command "bogus"`, "run 'syctl --help' for usage"},
		{[]string{"group", "policy", "set", "--percent"}, "syctl: flag needs an argument: --percent", "run 'syctl group policy set --help' for usage"},
		{[]string{"keys", "init", "--bad"}, "syctl: unknown flag: --bad", "run 'syctl keys init --help' for usage"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			usagetest.UsageError(t, "syctl", run, tt.args, tt.wantLine+"\n"+tt.wantHint+"\n")
		})
	}
}

func TestVersion(t *testing.T) { usagetest.Version(t, "syctl", run) }

// TestSecretsNeverShown runs every command's --help, and a mistyped flag, with the secret
// variables set to a marker: the marker must appear in no output and no error.
func TestSecretsNeverShown(t *testing.T) {
	const marker = "SECRET-MARKER-5f1d"
	for _, v := range []string{"SYCTL_TOKEN", "SYCTL_PASSPHRASE", "SYCTL_KEY_PASSPHRASE"} {
		t.Setenv(v, marker)
	}
	for _, leaf := range leafCommands() {
		for _, extra := range [][]string{{"--help"}, {"--no-such-flag"}, {}} {
			args := append(append([]string{}, leaf...), extra...)
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // nothing may reach a server or wait for a prompt
			var out, errb bytes.Buffer
			err := run(ctx, args, &out, &errb)
			var rep bytes.Buffer
			usage.Report(&rep, "syctl", err)
			for what, s := range map[string]string{"stdout": out.String(), "stderr": errb.String(), "report": rep.String()} {
				if strings.Contains(s, marker) {
					t.Errorf("syctl %s: %s shows the secret: %s", strings.Join(args, " "), what, s)
				}
			}
		}
	}
}

func TestListJSON(t *testing.T) {
	e := newAdminEnv(t)
	file := filepath.Join(t.TempDir(), "update.gz")
	os.WriteFile(file, bytes.Repeat([]byte("x"), 4096), 0o644)
	e.must("app", "create", "--id", omaha.FlatcarAppID, "--name", "Flatcar")
	e.must("release", "publish", "--version", "4081.2.0", "--file", file)
	e.must("channel", "create", "--name", "stable")
	e.must("channel", "set", "--name", "stable", "--version", "4081.2.0")
	e.must("group", "create", "--name", "prod", "--track", "stable", "--channel", "stable")

	var apps []store.App
	decode(t, e.must("app", "list", "--json"), &apps)
	if len(apps) != 1 || apps[0].ID != store.FlatcarAppID || apps[0].Name != "Flatcar" {
		t.Errorf("app list --json: %+v", apps)
	}
	var rels []store.Release
	decode(t, e.must("release", "list", "--json"), &rels)
	if len(rels) != 1 || rels[0].Version != "4081.2.0" || rels[0].Size != 4096 {
		t.Errorf("release list --json: %+v", rels)
	}
	var chans []store.Channel
	decode(t, e.must("channel", "list", "--json"), &chans)
	if len(chans) != 1 || chans[0].Name != "stable" || chans[0].Releases["amd64-usr"].Version != "4081.2.0" {
		t.Errorf("channel list --json: %+v", chans)
	}
	var groups []store.Group
	decode(t, e.must("group", "list", "--json"), &groups)
	if len(groups) != 1 || groups[0].Name != "prod" || groups[0].Channel != "stable" || !groups[0].UpdatesEnabled {
		t.Errorf("group list --json: %+v", groups)
	}
}

func decode(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("not JSON (%v):\n%s", err, s)
	}
}

func TestCACertFromEnvironment(t *testing.T) {
	e := newAdminEnv(t)
	args := []string{"app", "list", "--server", e.url, "--token", e.adminTok}
	t.Setenv("SYCTL_CACERT", "")
	if err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without a CA: %v, want a certificate error", err)
	}
	t.Setenv("SYCTL_CACERT", e.cacert)
	var out bytes.Buffer
	if err := run(context.Background(), args, &out, &bytes.Buffer{}); err != nil {
		t.Fatalf("with SYCTL_CACERT: %v", err)
	}
	if !strings.Contains(out.String(), "ID") {
		t.Errorf("app list: %q", out.String())
	}
}

func TestTokenFromEnvironment(t *testing.T) {
	e := newAdminEnv(t)
	t.Setenv("SYCTL_TOKEN", e.adminTok)
	if err := run(context.Background(), []string{"app", "list", "--server", e.url, "--cacert", e.cacert}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatalf("with SYCTL_TOKEN: %v", err)
	}
}

func TestPayloadSignPassphraseVariables(t *testing.T) {
	dir := t.TempDir()
	k, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "payload.pem")
	if err := k.Save(keyFile, keys.StaticPassphrase([]byte("hunter2"))); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "usr.img")
	os.WriteFile(img, payloadTestImage(), 0o644)
	out := filepath.Join(dir, "update.bin")
	if err := run(context.Background(), []string{"payload", "build", "--image", img, "--version", "1.0.0", "--board", "amd64-usr",
		"--compression", "none", "--out", out}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		env         map[string]string
		wantWarning bool
	}{
		{name: "SYCTL_PASSPHRASE", env: map[string]string{"SYCTL_PASSPHRASE": "hunter2"}},
		{name: "old SYCTL_KEY_PASSPHRASE", env: map[string]string{"SYCTL_KEY_PASSPHRASE": "hunter2"}, wantWarning: true},
		{name: "both: the new one wins", env: map[string]string{"SYCTL_PASSPHRASE": "hunter2", "SYCTL_KEY_PASSPHRASE": "wrong"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range []string{"SYCTL_PASSPHRASE", "SYCTL_KEY_PASSPHRASE"} {
				t.Setenv(v, "")
				os.Unsetenv(v)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), []string{"payload", "sign", "--key", keyFile, out}, &stdout, &stderr); err != nil {
				t.Fatalf("payload sign: %v\n%s", err, stderr.String())
			}
			warned := strings.Contains(stderr.String(), "SYCTL_KEY_PASSPHRASE is deprecated; set SYCTL_PASSPHRASE")
			if warned != tt.wantWarning {
				t.Errorf("stderr %q: deprecation warning %v, want %v", stderr.String(), warned, tt.wantWarning)
			}
			if strings.Contains(stderr.String(), "hunter2") {
				t.Errorf("stderr shows the passphrase: %q", stderr.String())
			}
		})
	}
}

func TestPublishProgressSummary(t *testing.T) {
	e := newAdminEnv(t)
	file := filepath.Join(t.TempDir(), "update.gz")
	os.WriteFile(file, bytes.Repeat([]byte("y"), 3<<20), 0o644)
	e.must("app", "create", "--id", omaha.FlatcarAppID, "--name", "Flatcar")
	var out, errb bytes.Buffer
	args := []string{"release", "publish", "--version", "1.0.0", "--file", file, "--server", e.url, "--token", e.adminTok, "--cacert", e.cacert}
	if err := run(context.Background(), args, &out, &errb); err != nil {
		t.Fatal(err)
	}
	// stderr is a buffer, not a terminal: one summary line, no redrawn line.
	if got := errb.String(); !strings.HasPrefix(got, "uploaded 3.0 MiB (3145728 bytes) in ") || strings.Count(got, "\n") != 1 || strings.Contains(got, "\r") {
		t.Errorf("stderr %q, want one summary line", got)
	}
}

func TestProgressTerminalLine(t *testing.T) {
	clock := time.Unix(0, 0)
	now := func() time.Time { return clock }
	var w bytes.Buffer
	p := newProgress(&w, "uploaded", now)
	p.tty = true // as newProgress sets it for a terminal
	r := &progressReader{r: bytes.NewReader(make([]byte, 4<<20)), p: p, total: 4 << 20}
	buf := make([]byte, 1<<20)
	clock = clock.Add(time.Second)
	r.Read(buf)
	if got, want := w.String(), "\ruploaded 1.0 MiB of 4.0 MiB (25%), 1.0 MiB/s   "; got != want {
		t.Errorf("after 1 MiB in 1s: %q, want %q", got, want)
	}
	w.Reset()
	clock = clock.Add(progressInterval / 2)
	r.Read(buf)
	if w.Len() != 0 {
		t.Errorf("redrawn sooner than progressInterval: %q", w.String())
	}
	clock = clock.Add(progressInterval)
	r.Read(buf)
	r.Read(buf) // the last bytes: drawn at once, with the newline
	p.summary()
	if got := w.String(); !strings.HasSuffix(got, "\ruploaded 4.0 MiB of 4.0 MiB (100%), 3.1 MiB/s   \n") || strings.Count(got, "\n") != 1 {
		t.Errorf("final line %q", got)
	}
}

// TestSingleDashFlags: command lines written for the standard flag package (-name VALUE,
// -flag=VALUE, -json) keep working, against a real server and offline.
func TestSingleDashFlags(t *testing.T) {
	e := newAdminEnv(t)
	conn := []string{"-server", e.url, "-token=" + e.adminTok, "-cacert", e.cacert}
	for _, args := range [][]string{
		{"app", "create", "-id", omaha.FlatcarAppID, "-name", "Flatcar"},
		{"channel", "create", "-name=stable"},
		{"group", "create", "-name", "prod", "-track", "stable", "-channel", "stable", "-updates=off"},
		{"group", "policy", "set", "-name", "prod", "-percent=30", "-window", "Mon-Fri 09:00 8h UTC"},
	} {
		if err := run(context.Background(), append(args, conn...), io.Discard, io.Discard); err != nil {
			t.Fatalf("syctl %s: %v", strings.Join(args, " "), err)
		}
	}
	var groups []store.Group
	decode(t, e.must("group", "list", "-json"), &groups)
	if len(groups) != 1 || groups[0].Name != "prod" || groups[0].UpdatesEnabled {
		t.Errorf("group list -json: %+v", groups)
	}
	var p struct {
		Policy struct {
			Percent *int     `json:"percent"`
			Windows []string `json:"windows"`
		} `json:"policy"`
	}
	decode(t, e.must("group", "policy", "show", "-name", "prod", "-json"), &p)
	if p.Policy.Percent == nil || *p.Policy.Percent != 30 || len(p.Policy.Windows) != 1 {
		t.Errorf("group policy show -json: %+v", p)
	}

	dir := filepath.Join(t.TempDir(), "keys")
	if err := run(context.Background(), []string{"keys", "init", "-dir", dir, "-type", "ecdsa", "-root-keys=2", "-root-threshold", "2",
		"-insecure-no-passphrase"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"root-1.key", "root-2.key", "targets.pub", "1.root.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	usagetest.UsageError(t, "syctl", run, []string{"tuf", "status", "-nope"}, "syctl: unknown shorthand flag: 'n' in -nope\nrun 'syctl tuf status --help' for usage\n")
}

// helpListsFlags is usagetest.Help, and every flag named must be in the block's flags
// section (not only in the synopsis or another flag's text).
func helpListsFlags(t *testing.T, args []string, flags ...string) {
	t.Helper()
	usagetest.Help(t, run, args, flags...)
	var out bytes.Buffer
	if err := run(context.Background(), append(append([]string{}, args...), "--help"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(out.String(), "\nflags:\n")
	for _, f := range flags {
		if !strings.Contains(section, "      --"+f+" ") {
			t.Errorf("%q --help lists no --%s among its flags:\n%s", args, f, section)
		}
	}
}

func TestLeafHelpListsFlags(t *testing.T) {
	admin := []string{"server", "token", "cacert", "timeout"}
	helpListsFlags(t, []string{"release", "publish"}, append([]string{"app", "version", "board", "file", "targets", "url", "size", "sha256", "sha1"}, admin...)...)
	helpListsFlags(t, []string{"group", "policy", "set"}, append([]string{"name", "percent", "max-per-period", "period", "window", "install-timeout", "halt-failures", "halt-of", "floor", "block", "unblock", "pin", "unpin", "clear-caps"}, admin...)...)
	helpListsFlags(t, []string{"instance", "list"}, append([]string{"app", "group", "version", "status", "limit", "json"}, admin...)...)
	helpListsFlags(t, []string{"token", "create"}, append([]string{"name", "role", "expires", "description", "json"}, admin...)...)
	helpListsFlags(t, []string{"host", "list"}, append([]string{"after", "limit", "json"}, admin...)...)
	helpListsFlags(t, []string{"rollout", "status"}, append([]string{"app", "name", "version", "json"}, admin...)...)
	helpListsFlags(t, []string{"keys", "init"}, "dir", "root-threshold", "root-keys", "type", "root-expires", "passphrase-file", "insecure-no-passphrase")
	helpListsFlags(t, []string{"tuf", "add-target"}, "repo", "name", "file", "length", "sha256", "version", "board", "channel", "custom", "custom-int")
	helpListsFlags(t, []string{"tuf", "rotate-root"}, "repo", "key", "add-key", "revoke-key", "threshold", "expires", "passphrase-file")
	helpListsFlags(t, []string{"tuf", "publish-root"}, append([]string{"root"}, admin...)...)
	helpListsFlags(t, []string{"payload", "build"}, "image", "version", "board", "chunk", "compression", "xz-encoder", "source", "out")
	helpListsFlags(t, []string{"payload", "apply"}, "pubkey", "target", "source", "xz-decoder")
}

func TestCompletion(t *testing.T) {
	usagetest.Completion(t, "syctl", run, "keys", "tuf", "payload", "app", "release", "channel", "group", "instance", "rollout", "host", "token")
}

func TestManPages(t *testing.T) {
	usagetest.ManPages(t, run, map[string][]string{
		"syctl.1":                  nil,
		"syctl-release-publish.1":  {"app", "version", "file", "server", "token", "cacert", "timeout"},
		"syctl-group-policy-set.1": {"name", "percent", "window", "install-timeout"},
		"syctl-keys-init.1":        {"dir", "passphrase-file", "insecure-no-passphrase"},
		"syctl-tuf-sign-targets.1": {"repo", "key", "expires"},
		"syctl-payload-verify.1":   {"pubkey", "xz-decoder"},
		"syctl-token-revoke.1":     {"self", "server"},
		"syctl-host-enroll.1":      {"server"},
	})
}

func TestCommandsDoc(t *testing.T) {
	usagetest.CommandsDoc(t, "syctl", usage.Markdown(newRoot(time.Now)))
}

// TestSecretsNotInGeneratedText: with every SYCTL_ variable set to a marker, neither the
// man pages, nor docs/commands.md's text, nor the completion scripts, nor help show it:
// no flag takes its default from the environment.
func TestSecretsNotInGeneratedText(t *testing.T) {
	const marker = "SECRET-MARKER-9a3e"
	for _, v := range []string{"SYCTL_TOKEN", "SYCTL_PASSPHRASE", "SYCTL_KEY_PASSPHRASE", "SYCTL_SERVER", "SYCTL_CACERT"} {
		t.Setenv(v, marker)
	}
	var all strings.Builder
	all.WriteString(usage.Markdown(newRoot(time.Now)))
	dir := t.TempDir()
	if err := run(context.Background(), []string{"man", dir}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	if len(pages) < len(commandPaths) {
		t.Fatalf("%d man pages for %d commands", len(pages), len(commandPaths))
	}
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	for _, args := range [][]string{{"completion", "bash"}, {"completion", "zsh"}, {"completion", "fish"}, {"--help"},
		{"token", "create", "--help"}, {"keys", "init", "--help"}, {"payload", "sign", "--help"}} {
		if err := run(context.Background(), args, &all, &all); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(all.String(), marker) {
		t.Errorf("the generated text shows the environment's value")
	}
	if !strings.Contains(all.String(), "$SYCTL_TOKEN") || !strings.Contains(all.String(), "SYCTL_PASSPHRASE") {
		t.Errorf("the generated text does not name the variables")
	}
}

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

const adminUsage = `syctl app create --id ID --name NAME | app list [--json]
syctl release publish --app A --version V --board B --file PATH [--targets FILE]
syctl release publish --app A --version V --board B --url URL --size N --sha256 HEX [--sha1 HEX]
syctl release list --app A [--json]
syctl channel create --app A --name N | channel set --app A --name N --version V [--board B] | channel list --app A [--json]
syctl group create --app A --name N --track T --channel C [--updates on|off]
syctl group update --app A --name N [--track T] [--channel C] [--updates on|off] | group list --app A [--json]
syctl instance list [--app A] [--group G] [--version V] [--status S] [--limit N] [--json]
syctl instance show MACHINE-ID [--json]
syctl group policy set|show … | rollout status|pause|resume … | channel promote … (see syctl rollout --help)
--app defaults to Flatcar's application ({e96281a6-d1af-4bde-9a0a-97b76e56dc57}) everywhere.
every command: --server URL (or SYCTL_SERVER), --token TOKEN (or SYCTL_TOKEN),
  --cacert PEM (or SYCTL_CACERT), --timeout D (0: no limit)`

// adminFlags are the flags every admin command takes.
type adminFlags struct {
	server, token, cacert string
	timeout               time.Duration
}

// newAdminFlagSet returns the flag set of the admin command name ("release publish") with
// the flags every admin command takes. No default shows a secret: the token's comes from
// SYCTL_TOKEN only when the flag is not given, in client.
func newAdminFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *adminFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	a := &adminFlags{}
	fs.StringVar(&a.server, "server", os.Getenv("SYCTL_SERVER"), "omaha-server base URL (env SYCTL_SERVER)")
	// The token's default is not the environment's value: flag prints a default in the
	// usage text, and a token must never be printed. client() falls back to $SYCTL_TOKEN.
	fs.StringVar(&a.token, "token", "", "admin API bearer token (from $SYCTL_TOKEN when not given)")
	fs.StringVar(&a.cacert, "cacert", os.Getenv("SYCTL_CACERT"), "PEM file of the CA (or self-signed certificate) the server's certificate chains to (env SYCTL_CACERT)")
	fs.DurationVar(&a.timeout, "timeout", 0, "give up after this long (0: no limit; uploads can be long)")
	// group policy set called the request timeout --http-timeout; the old name still works.
	fs.DurationVar(&a.timeout, "http-timeout", 0, hiddenFlag+"old name of --timeout")
	return fs, a
}

// withTimeout applies --timeout to ctx.
func (a *adminFlags) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if a.timeout > 0 {
		return context.WithTimeout(ctx, a.timeout)
	}
	return context.WithCancel(ctx)
}

func (a *adminFlags) client() (*adminclient.Client, error) {
	if a.server == "" {
		return nil, fmt.Errorf("%w: no server: give --server or set SYCTL_SERVER", errUsage)
	}
	if a.token == "" {
		a.token = os.Getenv("SYCTL_TOKEN")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if a.cacert != "" {
		pem, err := os.ReadFile(a.cacert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %s: no PEM certificate in it", a.cacert)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	token := a.token
	if token == "" {
		token = os.Getenv("SYCTL_TOKEN")
	}
	return adminclient.New(a.server, token, &http.Client{Transport: tr, Timeout: a.timeout})
}

// parse parses args, allowing flags after positional arguments; it returns the positional
// arguments. --help prints the command's usage on stdout and returns flag.ErrHelp.
func parse(fs *flag.FlagSet, args []string, stdout io.Writer) ([]string, error) {
	var pos []string
	for {
		if err := usageParse(fs, args, stdout, synopsis(fs.Name())); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func need(flags map[string]string) error {
	var missing []string
	for name, v := range flags {
		if v == "" {
			missing = append(missing, "--"+name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", errUsage, strings.Join(missing, ", "))
	}
	return nil
}

func onOff(s string) (*bool, error) {
	switch s {
	case "":
		return nil, nil
	case "on", "true", "yes":
		v := true
		return &v, nil
	case "off", "false", "no":
		v := false
		return &v, nil
	}
	return nil, fmt.Errorf("%w: --updates %q: want on or off", errUsage, s)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// adminCommand is one command over the admin API: its synopsis for --help and its run
// function, which gets the arguments after the command words.
type adminCommand struct {
	synopsis string
	run      func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// adminCommands is the table of the commands runAdmin dispatches, by their command words.
// Each lives in its own file.
func adminCommands() map[string]adminCommand {
	return map[string]adminCommand{
		"app create":      {"syctl app create --id ID --name NAME", runAppCreate},
		"app list":        {"syctl app list [--json]", runAppList},
		"release publish": {"syctl release publish --app A --version V --board B (--file PATH [--targets FILE] | --url URL --size N --sha256 HEX [--sha1 HEX])", runReleasePublish},
		"release list":    {"syctl release list --app A [--json]", runReleaseList},
		"channel create":  {"syctl channel create --app A --name N", runChannelCreate},
		"channel set":     {"syctl channel set --app A --name N --version V [--board B]", runChannelSet},
		"channel list":    {"syctl channel list --app A [--json]", runChannelList},
		"channel promote": {"syctl channel promote --app A --from beta --to stable", runPromote},
		"group create":    {"syctl group create --app A --name N --track T --channel C [--updates on|off]", runGroupCreate},
		"group update":    {"syctl group update --app A --name N [--track T] [--channel C] [--updates on|off]", runGroupUpdate},
		"group list":      {"syctl group list --app A [--json]", runGroupList},
		"group policy":    {rolloutUsage, runPolicy},
		"instance list":   {"syctl instance list [--app A] [--group G] [--version V] [--status S] [--limit N] [--json]", runInstanceList},
		"instance show":   {"syctl instance show MACHINE-ID [--json]", runInstanceShow},
	}
}

// runAdmin runs the commands that talk to omaha-server's admin API; args[0] is one of
// app, release, channel, group, instance.
func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		return fmt.Errorf("%w: %s needs a subcommand", errUsage, args[0])
	}
	cmd, ok := adminCommands()[args[0]+" "+args[1]]
	if !ok {
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0]+" "+args[1])
	}
	return cmd.run(ctx, args[2:], stdout, stderr)
}

// synopsis returns the synopsis of the admin command called name, for its --help.
func synopsis(name string) string {
	if c, ok := adminCommands()[name]; ok && c.synopsis != rolloutUsage {
		return c.synopsis
	}
	return "syctl " + name + " [flags]"
}

// start checks the common flags and returns the client and the context bounded by --timeout.
func (a *adminFlags) start(ctx context.Context) (context.Context, context.CancelFunc, *adminclient.Client, error) {
	c, err := a.client()
	if err != nil {
		return ctx, func() {}, nil, err
	}
	ctx, cancel := a.withTimeout(ctx)
	return ctx, cancel, c, nil
}

// parseNone parses args for a command that takes no positional arguments.
func parseNone(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	pos, err := parse(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	return nil
}

// addAppFlag adds --app with the one default every command shares: Flatcar's application.
func addAppFlag(fs *flag.FlagSet, app *string) {
	fs.StringVar(app, "app", store.FlatcarAppID, "application ID")
}

func onOffString(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func publish(ctx context.Context, c *adminclient.Client, stdout, stderr io.Writer, app string, m adminapi.ReleaseMetadata, file, targetsFile string) error {
	if err := need(map[string]string{"version": m.Version, "board": m.Board}); err != nil {
		return err
	}
	if (file == "") == (m.URL == "") {
		return fmt.Errorf("%w: give either --file (upload) or --url with --size and --sha256", errUsage)
	}
	var rel store.Release
	if m.URL != "" {
		if targetsFile != "" {
			return fmt.Errorf("%w: --targets goes with --file", errUsage)
		}
		if m.Size <= 0 || m.SHA256 == "" {
			return fmt.Errorf("%w: --url needs --size and --sha256", errUsage)
		}
		var err error
		if rel, err = c.PublishExternal(ctx, app, m); err != nil {
			return err
		}
	} else {
		if m.Size != 0 || m.SHA1 != "" {
			return fmt.Errorf("%w: --size and --sha1 go with --url (the server measures an upload)", errUsage)
		}
		var targets []byte
		if targetsFile != "" {
			var err error
			if targets, err = os.ReadFile(targetsFile); err != nil {
				return err
			}
		}
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() || st.Size() == 0 {
			return fmt.Errorf("%s: not a non-empty regular file", file)
		}
		m.Size, m.FileName = st.Size(), filepath.Base(file)
		prog := newProgress(stderr, "uploaded", time.Now)
		rel, err = c.Upload(ctx, app, m, targets, &progressReader{r: f, p: prog, total: st.Size()})
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%s changed while uploading: %w", file, err)
			}
			return err
		}
		prog.summary()
	}
	fmt.Fprintf(stdout, "published %s %s for %s: %s, %d bytes, sha256 %s\n", rel.AppID, rel.Version, rel.Board, rel.FileName, rel.Size, rel.SHA256)
	return nil
}

// parseLeaf parses the flags of a command whose synopsis is its name and flags.
func parseLeaf(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	return usageParse(fs, args, stdout, "syctl "+fs.Name()+" [flags]")
}

// listApp runs a `syctl NAME` that lists one application's items (`channel list`, …): the
// admin and --app flags, --json, the request through list, then JSON or a table of header
// and one row (or more) per item.
func listApp[T any](ctx context.Context, name string, args []string, stdout, stderr io.Writer,
	list func(*adminclient.Client, context.Context, string) ([]T, error), header string, rows func(io.Writer, T)) error {
	fs, af := newAdminFlagSet(name, stderr)
	var app string
	addAppFlag(fs, &app)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseNone(fs, args, stdout); err != nil {
		return err
	}
	ctx, cancel, c, err := af.start(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	items, err := list(c, ctx, app)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, items)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		rows(tw, it)
	}
	return tw.Flush()
}

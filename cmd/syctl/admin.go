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

// flatcarAppID is the default --app.
const flatcarAppID = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"

const adminUsage = `syctl app create --id ID --name NAME | app list
syctl release publish --app A --version V --board B --file PATH [--targets FILE]
syctl release publish --app A --version V --board B --url URL --size N --sha256 HEX [--sha1 HEX]
syctl release list --app A
syctl channel create --app A --name N | channel set --app A --name N --version V [--board B] | channel list --app A
syctl group create --app A --name N --track T --channel C [--updates on|off]
syctl group update --app A --name N [--track T] [--channel C] [--updates on|off] | group list --app A
syctl instance list [--app A] [--group G] [--version V] [--status S] [--limit N] [--json]
syctl instance show MACHINE-ID [--json]
syctl group policy set|show … | rollout status|pause|resume … | channel promote … (see syctl rollout help)
every command: --server URL (or SYCTL_SERVER), --token TOKEN (or SYCTL_TOKEN), --cacert PEM`

// adminFlags are the flags every admin command takes.
type adminFlags struct {
	server, token, cacert string
	timeout               time.Duration
}

func newAdminFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *adminFlags) {
	return newAdminFlagSetTimeout(name, stderr, "timeout")
}

// newAdminFlagSetTimeout is newAdminFlagSet with the request timeout under another flag
// name, for commands whose own --timeout means something else (group policy set).
func newAdminFlagSetTimeout(name string, stderr io.Writer, timeoutFlag string) (*flag.FlagSet, *adminFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	a := &adminFlags{}
	fs.StringVar(&a.server, "server", os.Getenv("SYCTL_SERVER"), "omaha-server base URL (env SYCTL_SERVER)")
	// The token's default is not the environment's value: flag prints a default in the
	// usage text, and a token must never be printed. client() falls back to $SYCTL_TOKEN.
	fs.StringVar(&a.token, "token", "", "admin API bearer token (from $SYCTL_TOKEN when not given)")
	fs.StringVar(&a.cacert, "cacert", "", "PEM file of the CA (or self-signed certificate) the server's certificate chains to")
	fs.DurationVar(&a.timeout, timeoutFlag, 0, "give up after this long (0: no limit; uploads can be long)")
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
// arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
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

// runAdmin runs the commands that talk to omaha-server's admin API; args[0] is one of
// app, release, channel, group, instance. On a usage error it prints the admin usage.
func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := admin(ctx, args, stdout, stderr)
	if errors.Is(err, errUsage) {
		fmt.Fprintln(stderr, adminUsage)
	}
	return err
}

func admin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		return fmt.Errorf("%w: %s needs a subcommand", errUsage, args[0])
	}
	cmd := args[0] + " " + args[1]
	switch cmd {
	case "group policy":
		err := runPolicy(ctx, args[2:], stdout, stderr)
		if errors.Is(err, errUsage) {
			fmt.Fprintln(stderr, rolloutUsage)
		}
		return err
	case "channel promote":
		err := runPromote(ctx, args[2:], stdout, stderr)
		if errors.Is(err, errUsage) {
			fmt.Fprintln(stderr, rolloutUsage)
		}
		return err
	}
	fs, af := newAdminFlagSet(cmd, stderr)
	var (
		app, id, name, version, board, file, targets, url, sha256, sha1 string
		track, channel, updates, group, status                          string
		size                                                            int64
		limit                                                           int
		asJSON                                                          bool
	)
	if cmd != "app create" && cmd != "app list" {
		def := flatcarAppID
		if cmd == "instance list" {
			def = ""
		}
		fs.StringVar(&app, "app", def, "application ID")
	}
	switch cmd {
	case "app create":
		fs.StringVar(&id, "id", "", "application ID (a GUID, braces optional)")
		fs.StringVar(&name, "name", "", "application name")
	case "release publish":
		fs.StringVar(&version, "version", "", "release version, e.g. 4081.2.0")
		fs.StringVar(&board, "board", "amd64-usr", "board (architecture): amd64-usr, arm64-usr")
		fs.StringVar(&file, "file", "", "payload file to upload (the server hosts it)")
		fs.StringVar(&targets, "targets", "", "signed TUF targets metadata to publish with the payload")
		fs.StringVar(&url, "url", "", "payload URL, for a release hosted elsewhere")
		fs.Int64Var(&size, "size", 0, "payload size in bytes (with --url)")
		fs.StringVar(&sha256, "sha256", "", "payload SHA-256, hex (required with --url; checked by the server with --file)")
		fs.StringVar(&sha1, "sha1", "", "payload SHA-1, hex (optional, with --url)")
	case "channel create", "channel set":
		fs.StringVar(&name, "name", "", "channel name")
		fs.StringVar(&version, "version", "", "release version (channel set)")
		fs.StringVar(&board, "board", "amd64-usr", "board (channel set)")
	case "group create", "group update":
		fs.StringVar(&name, "name", "", "group name")
		fs.StringVar(&track, "track", "", "track hosts send (their GROUP)")
		fs.StringVar(&channel, "channel", "", "channel the group follows")
		fs.StringVar(&updates, "updates", "", "on or off")
	case "instance list":
		fs.StringVar(&group, "group", "", "only this group")
		fs.StringVar(&version, "version", "", "only this version")
		fs.StringVar(&status, "status", "", "only this status (update-granted, downloading, downloaded, installed, complete, error, rolled-back, …)")
		fs.IntVar(&limit, "limit", 0, "at most this many (0: all; the server is asked in pages)")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	case "instance show":
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	case "release list", "channel list", "group list", "app list":
	default:
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
	pos, err := parse(fs, args[2:])
	if err != nil {
		return err
	}
	if cmd == "instance show" {
		if len(pos) != 1 {
			return fmt.Errorf("%w: instance show takes one MACHINE-ID", errUsage)
		}
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	if af.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, af.timeout)
		defer cancel()
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()

	switch cmd {
	case "app create":
		if err := need(map[string]string{"id": id, "name": name}); err != nil {
			return err
		}
		a, err := c.CreateApp(ctx, id, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created application %s (%s)\n", a.ID, a.Name)
	case "app list":
		apps, err := c.ListApps(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "ID\tNAME\tCREATED")
		for _, a := range apps {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", a.ID, a.Name, ts(a.CreatedAt))
		}
	case "release publish":
		return publish(ctx, c, stdout, app, adminapi.ReleaseMetadata{Version: version, Board: board, Size: size,
			SHA256: sha256, SHA1: sha1, URL: url}, file, targets)
	case "release list":
		rels, err := c.ListReleases(ctx, app)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "VERSION\tBOARD\tFILE\tSIZE\tSHA256\tHOSTED\tTUF\tURL")
		for _, r := range rels {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%v\t%v\t%s\n", r.Version, r.Board, r.FileName, r.Size, r.SHA256, r.Hosted, r.HasTargetsMetadata, r.URL)
		}
	case "channel create":
		if err := need(map[string]string{"name": name}); err != nil {
			return err
		}
		ch, err := c.CreateChannel(ctx, app, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created channel %s\n", ch.Name)
	case "channel set":
		if err := need(map[string]string{"name": name, "version": version, "board": board}); err != nil {
			return err
		}
		ch, err := c.SetChannel(ctx, app, name, board, version)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "channel %s now offers %s on %s\n", ch.Name, ch.Releases[board].Version, board)
	case "channel list":
		chans, err := c.ListChannels(ctx, app)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "CHANNEL\tBOARD\tVERSION")
		for _, ch := range chans {
			if len(ch.Releases) == 0 {
				fmt.Fprintf(tw, "%s\t-\t-\n", ch.Name)
			}
			for b, r := range ch.Releases {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", ch.Name, b, r.Version)
			}
		}
	case "group create", "group update":
		if err := need(map[string]string{"name": name}); err != nil {
			return err
		}
		upd, err := onOff(updates)
		if err != nil {
			return err
		}
		in := adminapi.GroupInput{UpdatesEnabled: upd}
		if track != "" {
			in.Track = &track
		}
		if channel != "" {
			in.Channel = &channel
		}
		var g store.Group
		if cmd == "group create" {
			if err := need(map[string]string{"track": track, "channel": channel}); err != nil {
				return err
			}
			in.Name = name
			g, err = c.CreateGroup(ctx, app, in)
		} else {
			g, err = c.UpdateGroup(ctx, app, name, in)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "group %s: track %s, channel %s, updates %s\n", g.Name, g.Track, g.Channel, map[bool]string{true: "on", false: "off"}[g.UpdatesEnabled])
	case "group list":
		groups, err := c.ListGroups(ctx, app)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "GROUP\tTRACK\tCHANNEL\tUPDATES")
		for _, g := range groups {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Name, g.Track, g.Channel, map[bool]string{true: "on", false: "off"}[g.UpdatesEnabled])
		}
	case "instance list":
		list, err := c.ListInstances(ctx, store.InstanceFilter{AppID: app, Group: group, Version: version, Status: store.Status(status), Limit: limit})
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(stdout, list)
		}
		fmt.Fprintln(tw, "MACHINE-ID\tGROUP\tVERSION\tSTATUS\tBOARD\tIP\tLAST CHECK")
		for _, in := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.MachineID, in.Group, in.Version, in.Status, in.Board, in.IP, ts(in.LastCheck))
		}
	case "instance show":
		d, err := c.GetInstance(ctx, pos[0])
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(stdout, d)
		}
		for _, in := range d {
			fmt.Fprintf(tw, "machine id\t%s\napplication\t%s\ngroup\t%s (track %s)\nversion\t%s\naleph version\t%s\nboard\t%s\noem\t%s %s\nip\t%s\nboot id\t%s\n",
				in.MachineID, in.AppID, in.Group, in.Track, in.Version, in.AlephVersion, in.Board, in.OEM, in.OEMVersion, in.IP, in.BootID)
			fmt.Fprintf(tw, "status\t%s since %s\nupdate version\t%s\nlast error code\t%d\nfirst check\t%s\nlast check\t%s\n\nhistory (newest first):\n",
				in.Status, ts(in.StatusAt), in.UpdateVersion, in.LastErrorCode, ts(in.FirstCheck), ts(in.LastCheck))
			for _, h := range in.History {
				code := ""
				if h.ErrorCode != 0 {
					code = fmt.Sprintf("error code %d", h.ErrorCode)
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", ts(h.At), h.Status, h.Version, code)
			}
		}
	}
	return nil
}

func publish(ctx context.Context, c *adminclient.Client, stdout io.Writer, app string, m adminapi.ReleaseMetadata, file, targetsFile string) error {
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
		if rel, err = c.Upload(ctx, app, m, targets, f); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%s changed while uploading: %w", file, err)
			}
			return err
		}
	}
	fmt.Fprintf(stdout, "published %s %s for %s: %s, %d bytes, sha256 %s\n", rel.AppID, rel.Version, rel.Board, rel.FileName, rel.Size, rel.SHA256)
	return nil
}

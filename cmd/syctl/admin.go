package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/internal/smallfile"
	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// maxCACertSize bounds the --cacert file: a few PEM certificates.
const maxCACertSize = 1 << 20

// adminFlags are the flags every admin command takes.
type adminFlags struct {
	server, token, cacert string
	timeout               time.Duration
	fs                    *pflag.FlagSet
}

// newAdminCmd returns the command use ("publish --app A ...") over the admin API with the
// flags every admin command takes, and positional arguments refused (set Args to take some).
// No default comes from the environment: client reads SYCTL_SERVER, SYCTL_CACERT and
// SYCTL_TOKEN for the flags not given, so no help text shows a token.
func newAdminCmd(use, short string) (*cobra.Command, *adminFlags) {
	c := &cobra.Command{Use: use, Short: short, Args: usage.NoArgs}
	fs := c.Flags()
	a := &adminFlags{fs: fs}
	fs.StringVar(&a.server, "server", "", "omaha-server base URL (env SYCTL_SERVER)")
	fs.StringVar(&a.token, "token", "", "admin API bearer token (from $SYCTL_TOKEN when not given)")
	fs.StringVar(&a.cacert, "cacert", "", "PEM file of the CA (or self-signed certificate) the server's certificate chains to (env SYCTL_CACERT)")
	fs.DurationVar(&a.timeout, "timeout", 0, "give up after this long (0: no limit; uploads can be long)")
	// group policy set called the request timeout --http-timeout; the old name still works.
	fs.DurationVar(&a.timeout, "http-timeout", 0, "old name of --timeout")
	if err := fs.MarkHidden("http-timeout"); err != nil {
		panic(err) // the flag was defined just above
	}
	return c, a
}

// withTimeout applies --timeout to ctx.
func (a *adminFlags) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if a.timeout > 0 {
		return context.WithTimeout(ctx, a.timeout)
	}
	return context.WithCancel(ctx)
}

func (a *adminFlags) client() (*adminclient.Client, error) {
	if !a.fs.Changed("server") {
		a.server = os.Getenv("SYCTL_SERVER")
	}
	if !a.fs.Changed("cacert") {
		a.cacert = os.Getenv("SYCTL_CACERT")
	}
	if a.server == "" {
		return nil, fmt.Errorf("%w: no server: give --server or set SYCTL_SERVER", errUsage)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if a.cacert != "" {
		pem, err := smallfile.Read(a.cacert, maxCACertSize)
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

// start checks the common flags and returns the client and the context bounded by --timeout.
func (a *adminFlags) start(ctx context.Context) (context.Context, context.CancelFunc, *adminclient.Client, error) {
	c, err := a.client()
	if err != nil {
		return ctx, func() {}, nil, err
	}
	ctx, cancel := a.withTimeout(ctx)
	return ctx, cancel, c, nil
}

// addAppFlag adds --app with the one default every command shares: Flatcar's application.
func addAppFlag(fs *pflag.FlagSet, app *string) {
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

// newListCmd returns `syctl NOUN list` for one application's items (`channel list`, …):
// the admin and --app flags, --json, the request through list, then JSON or a table of
// header and one row (or more) per item.
func newListCmd[T any](short string, list func(*adminclient.Client, context.Context, string) ([]T, error),
	header string, rows func(io.Writer, T)) *cobra.Command {
	c, af := newAdminCmd("list [--app A] [--json]", short)
	var app string
	addAppFlag(c.Flags(), &app)
	asJSON := c.Flags().Bool("json", false, "print JSON")
	c.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
		ctx, cancel, cl, err := af.start(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		items, err := list(cl, ctx, app)
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
	})
	return c
}

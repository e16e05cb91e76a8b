package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/switchyard-os/switchyard/internal/smallfile"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/webhook"
)

// maxSecretFileBytes bounds --notify-secret-file.
const maxSecretFileBytes = 4096

// urlList is a repeatable flag that also takes a comma-separated list.
type urlList struct{ urls *[]string }

func (l urlList) String() string {
	if l.urls == nil {
		return ""
	}
	return strings.Join(*l.urls, ",")
}

func (l urlList) Type() string { return "url" }

func (l urlList) Set(s string) error {
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			*l.urls = append(*l.urls, u)
		}
	}
	return nil
}

// notifyFlags are serve's webhook flags (package webhook).
type notifyFlags struct {
	urls       []string
	secret     string
	secretFile string
}

func (f *notifyFlags) register(fs *pflag.FlagSet) {
	fs.Var(urlList{&f.urls}, "notify-url", "post halts, resumes, pauses, promotions and publishes as JSON to this URL (repeatable, or a comma-separated list)")
	fs.StringVar(&f.secret, "notify-secret", "", "sign each webhook body with HMAC-SHA256 under this secret (X-Switchyard-Signature); visible in the process list, see --notify-secret-file")
	fs.StringVar(&f.secretFile, "notify-secret-file", "", "read the webhook secret from this file instead")
}

// apply sets c.Notify from the flags.
func (f *notifyFlags) apply(c *server.Config) error {
	if f.secret != "" && f.secretFile != "" {
		return fmt.Errorf("%w: --notify-secret and --notify-secret-file exclude each other", errUsage)
	}
	secret := []byte(f.secret)
	if f.secretFile != "" {
		b, err := smallfile.Read(f.secretFile, maxSecretFileBytes)
		if err != nil {
			return fmt.Errorf("--notify-secret-file: %w", err)
		}
		if secret = bytes.TrimRight(b, "\r\n"); len(secret) == 0 {
			return fmt.Errorf("--notify-secret-file %s: the file is empty", f.secretFile)
		}
	}
	if len(f.urls) == 0 {
		if len(secret) > 0 {
			return fmt.Errorf("%w: a webhook secret without --notify-url", errUsage)
		}
		return nil
	}
	c.Notify = &webhook.Config{URLs: f.urls, Secret: secret}
	return nil
}

package main

import (
	"context"
	"fmt"
	"log/slog"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/pflag"
	"github.com/switchyard-os/switchyard/omaha-server/payloads/s3store"
	"github.com/switchyard-os/switchyard/omaha-server/server"
)

// payloadStoreFlags choose where hosted payloads live and how they are served.
type payloadStoreFlags struct {
	url string
}

func (p *payloadStoreFlags) register(fs *pflag.FlagSet, c *server.Config) {
	fs.StringVar(&p.url, "payload-store", "", "payloads on S3-compatible storage: s3://BUCKET/PREFIX?endpoint=URL&region=R (credentials: the AWS environment variables and files); empty: --data-dir")
	fs.DurationVar(&c.PayloadRedirectTTL, "payload-redirect", 0, "with --payload-store: answer /packages/ with a redirect to a presigned URL valid this long (e.g. 15m); 0: stream through the server")
	fs.StringVar(&c.CodebaseURL, "codebase-url", "", "base URL of hosted payloads in offers (a CDN in front of /packages/ or of the bucket prefix); empty: --public-url/packages")
}

// apply opens the S3 store when one is configured.
func (p *payloadStoreFlags) apply(ctx context.Context, c *server.Config, log *slog.Logger) error {
	if p.url == "" {
		if c.PayloadRedirectTTL != 0 {
			return fmt.Errorf("%w: --payload-redirect needs --payload-store", errUsage)
		}
		return nil
	}
	loc, err := s3store.ParseURL(p.url)
	if err != nil {
		return fmt.Errorf("%w: --payload-store: %v", errUsage, err)
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("loading AWS credentials: %w", err)
	}
	b, err := s3store.Open(ctx, loc, cfg, c.MaxPayloadBytes)
	if err != nil {
		return err
	}
	c.Payloads = b
	log.Info("payloads on object storage", "store", loc.String(), "redirect_ttl", c.PayloadRedirectTTL)
	return nil
}

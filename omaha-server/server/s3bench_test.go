package server_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/payloads"
	"github.com/switchyard-os/switchyard/omaha-server/payloads/s3store"
	"github.com/switchyard-os/switchyard/omaha-server/payloads/s3test"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// BenchmarkPayloadFromS3 downloads one 64 MiB payload three ways in each iteration: directly
// from the S3 server (a presigned GET, the baseline), streamed through omaha-server's
// /packages/, and through /packages/ in redirect mode. It reports each throughput and the
// ratios to the baseline of the same iteration (the target: through/direct >= 0.8).
func BenchmarkPayloadFromS3(b *testing.B) {
	s3 := s3test.Start(b)
	bucket := s3.CreateBucket("payloads")
	st := sqliteStoreTB(b)
	f := newS3Fixture(b, s3, bucket, st, 0)
	rf := newS3Fixture(b, s3, bucket, st, time.Minute)
	ctx := b.Context()
	if _, err := f.admin.CreateApp(ctx, omaha.FlatcarAppID, "Flatcar"); err != nil {
		b.Fatal(err)
	}
	payload, sum := randomPayload(64 << 20)
	if _, err := f.upload(ctx, "1.0.0", bytes.NewReader(payload), int64(len(payload)), sum); err != nil {
		b.Fatal(err)
	}
	path := "/packages/" + store.FlatcarAppID + "/amd64-usr/1.0.0/update.gz"
	cfg := aws.Config{Credentials: credentials.NewStaticCredentialsProvider(s3test.AccessKey, s3test.SecretKey, "")}
	bk, err := s3store.Open(ctx, s3store.Location{Bucket: bucket, Prefix: s3Prefix, Endpoint: s3.Endpoint, Region: s3test.Region}, cfg, 1<<30)
	if err != nil {
		b.Fatal(err)
	}
	direct, err := bk.Presign(ctx, http.MethodGet, payloads.Key{App: store.FlatcarAppID, Board: "amd64-usr", Version: "1.0.0", Name: "update.gz"}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{}}
	get := func(url string) time.Duration {
		start := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != int64(len(payload)) || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: HTTP %d, %d bytes, %v", url, resp.StatusCode, n, err)
		}
		return time.Since(start)
	}
	var dDirect, dThrough, dRedirect time.Duration
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		dDirect += get(direct)
		dThrough += get(f.srv.URL + path)
		dRedirect += get(rf.srv.URL + path)
	}
	mbps := func(d time.Duration) float64 { return float64(b.N) * float64(len(payload)) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(dDirect), "direct-MB/s")
	b.ReportMetric(mbps(dThrough), "through-MB/s")
	b.ReportMetric(mbps(dRedirect), "redirect-MB/s")
	b.ReportMetric(dDirect.Seconds()/dThrough.Seconds(), "through/direct")
	b.ReportMetric(dDirect.Seconds()/dRedirect.Seconds(), "redirect/direct")
}

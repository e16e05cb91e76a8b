package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/auth"
	"github.com/switchyard-os/switchyard/omaha-server/payloads/s3store"
	"github.com/switchyard-os/switchyard/omaha-server/payloads/s3test"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
	"github.com/switchyard-os/switchyard/update-engine/fetch"
)

// s3Fixture is a server whose payloads live in a real S3 server.
type s3Fixture struct {
	s3     *s3test.Server
	bucket string
	st     store.Store
	srv    *httptest.Server
	s      *server.Server
	admin  *adminclient.Client
}

const s3Prefix = "fleet"

func newS3Fixture(t testing.TB, s3 *s3test.Server, bucket string, st store.Store, redirect time.Duration) *s3Fixture {
	t.Helper()
	cfg := aws.Config{Credentials: credentials.NewStaticCredentialsProvider(s3test.AccessKey, s3test.SecretKey, "")}
	b, err := s3store.Open(t.Context(), s3store.Location{Bucket: bucket, Prefix: s3Prefix, Endpoint: s3.Endpoint, Region: s3test.Region}, cfg, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(t.Context(), server.Config{Payloads: b, PayloadRedirectTTL: redirect, ServerName: "test"}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	tok, hash, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateToken(t.Context(), store.Token{Hash: hash, Role: store.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	admin, _ := adminclient.New(srv.URL, tok, srv.Client())
	return &s3Fixture{s3: s3, bucket: bucket, st: st, srv: srv, s: s, admin: admin}
}

func randomPayload(n int) ([]byte, string) {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{1, byte(n)}).Read(b)
	s := sha256.Sum256(b)
	return b, hex.EncodeToString(s[:])
}

func (f *s3Fixture) objectFile(version, name string) string {
	return filepath.Join(f.s3.Root(), f.bucket, s3Prefix, store.FlatcarAppID, "amd64-usr", version, name)
}

func (f *s3Fixture) upload(ctx context.Context, version string, body io.Reader, size int64, sum string) (store.Release, error) {
	return f.admin.Upload(ctx, store.FlatcarAppID, adminapi.ReleaseMetadata{Version: version, Board: "amd64-usr",
		FileName: "update.gz", Size: size, SHA256: sum}, nil, body)
}

// noRelease checks that version left neither a row nor an object.
func (f *s3Fixture) noRelease(t *testing.T, version string) {
	t.Helper()
	if _, err := f.st.GetRelease(t.Context(), store.FlatcarAppID, version, "amd64-usr"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("release %s: %v, want no row", version, err)
	}
	if _, err := os.Stat(f.objectFile(version, "update.gz")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("release %s left an object: %v", version, err)
	}
	resp, err := http.Get(f.srv.URL + "/packages/" + store.FlatcarAppID + "/amd64-usr/" + version + "/update.gz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET of refused release %s: HTTP %d, want 404", version, resp.StatusCode)
	}
}

// cutTransport ends the body of the first cuts payload responses after cutAt bytes, like a
// dropped connection, and records every request it sends.
type cutTransport struct {
	cuts  atomic.Int32
	cutAt int64
	mu    chan struct{}
	log   []string
}

func (c *cutTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	c.mu <- struct{}{}
	c.log = append(c.log, fmt.Sprintf("%s %s range=%q -> %d", r.Method, r.URL.Host, r.Header.Get("Range"), resp.StatusCode))
	<-c.mu
	if (resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPartialContent) && c.cuts.Add(-1) >= 0 {
		resp.Body = &cutBody{rc: resp.Body, left: c.cutAt}
	}
	return resp, nil
}

type cutBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n, err := b.rc.Read(p[:min(int64(len(p)), b.left)])
	b.left -= int64(n)
	return n, err
}

func (b *cutBody) Close() error { return b.rc.Close() }

// fetchThrough downloads url with update-engine's fetch, the connection dropped three
// times, and returns the bytes and what the transport saw.
func fetchThrough(t *testing.T, url string, size int64) ([]byte, []string) {
	t.Helper()
	ct := &cutTransport{cutAt: size / 5, mu: make(chan struct{}, 1)}
	ct.cuts.Store(3)
	src := &fetch.Source{URLs: []string{url}, Length: size, HTTP: &http.Client{Transport: ct, Timeout: time.Minute},
		Options: fetch.Options{Backoff: time.Millisecond, MaxFailuresPerURL: 10}}
	rc, err := src.Open(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("fetch: %v (requests: %v)", err, ct.log)
	}
	return got, ct.log
}

func TestPayloadsOnS3(t *testing.T) {
	s3 := s3test.Start(t)
	bucket := s3.CreateBucket("payloads")
	st := sqliteStore(t, nil)
	f := newS3Fixture(t, s3, bucket, st, 0)
	ctx := t.Context()
	ok(f.admin.CreateApp(ctx, omaha.FlatcarAppID, "Flatcar"))(t)

	payload, sum := randomPayload(3 << 20)
	rel, err := f.upload(ctx, "1.0.0", bytes.NewReader(payload), int64(len(payload)), sum)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(f.objectFile("1.0.0", "update.gz")); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("the object in the bucket is not the upload: %v", err)
	}
	url := f.srv.URL + "/packages/" + store.FlatcarAppID + "/amd64-usr/1.0.0/update.gz"

	t.Run("serve with Range and ETag", func(t *testing.T) {
		etag := `"` + rel.SHA256 + `"`
		for _, tt := range []struct {
			name       string
			header     map[string]string
			wantStatus int
			wantBody   []byte
		}{
			{name: "whole", wantStatus: 200, wantBody: payload},
			{name: "range", header: map[string]string{"Range": "bytes=1000-1999"}, wantStatus: 206, wantBody: payload[1000:2000]},
			{name: "open range", header: map[string]string{"Range": "bytes=3000000-"}, wantStatus: 206, wantBody: payload[3000000:]},
			{name: "if-none-match", header: map[string]string{"If-None-Match": etag}, wantStatus: 304},
			{name: "if-range match", header: map[string]string{"Range": "bytes=10-19", "If-Range": etag}, wantStatus: 206, wantBody: payload[10:20]},
			{name: "if-range stale", header: map[string]string{"Range": "bytes=10-19", "If-Range": `"other"`}, wantStatus: 200, wantBody: payload},
		} {
			t.Run(tt.name, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				for k, v := range tt.header {
					req.Header.Set(k, v)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != tt.wantStatus || !bytes.Equal(body, tt.wantBody) || (resp.StatusCode != 304 && resp.Header.Get("ETag") != etag) {
					t.Fatalf("HTTP %d, %d bytes, ETag %s; want %d, %d bytes", resp.StatusCode, len(body), resp.Header.Get("ETag"), tt.wantStatus, len(tt.wantBody))
				}
			})
		}
	})

	t.Run("update-engine resumes through the server", func(t *testing.T) {
		got, log := fetchThrough(t, url, int64(len(payload)))
		if !bytes.Equal(got, payload) {
			t.Fatal("fetched bytes differ")
		}
		if n := strings.Count(strings.Join(log, "\n"), "-> 206"); n < 3 {
			t.Errorf("want at least 3 resumed (206) requests, got %v", log)
		}
	})

	t.Run("update-engine resumes through a presigned redirect", func(t *testing.T) {
		rf := newS3Fixture(t, s3, bucket, st, time.Minute)
		rurl := rf.srv.URL + "/packages/" + store.FlatcarAppID + "/amd64-usr/1.0.0/update.gz"
		got, log := fetchThrough(t, rurl, int64(len(payload)))
		if !bytes.Equal(got, payload) {
			t.Fatal("fetched bytes differ")
		}
		s3Host := strings.TrimPrefix(s3.Endpoint, "http://")
		joined := strings.Join(log, "\n")
		if strings.Count(joined, "-> 307") < 4 || strings.Count(joined, s3Host+` range="bytes=`) < 3 || !strings.Contains(joined, s3Host+` range="" -> 200`) {
			t.Errorf("want every request redirected and the bytes, resumed with Range, from the S3 server %s: %v", s3Host, log)
		}
	})

	t.Run("a wrong hash leaves nothing", func(t *testing.T) {
		_, err := f.upload(ctx, "1.0.1", bytes.NewReader(payload), int64(len(payload)), strings.Repeat("0", 64))
		if !adminclient.IsStatus(err, http.StatusBadRequest) {
			t.Fatalf("upload with a wrong hash: %v, want HTTP 400", err)
		}
		f.noRelease(t, "1.0.1")
	})

	t.Run("a client gone mid-upload leaves nothing", func(t *testing.T) {
		before := uploadsAnswered(t, f.s)
		tok := token(t, st, store.RoleAdmin)
		meta := fmt.Sprintf(`{"version":"1.0.2","board":"amd64-usr","file_name":"update.gz","size":%d}`, len(payload))
		head := "--B\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n" + meta +
			"\r\n--B\r\nContent-Disposition: form-data; name=\"payload\"; filename=\"update.gz\"\r\n\r\n"
		conn, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /api/v1/apps/%s/releases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
			"Content-Type: multipart/form-data; boundary=B\r\nContent-Length: %d\r\n\r\n%s", store.FlatcarAppID, tok, len(head)+len(payload)+8, head)
		conn.Write(payload[:len(payload)/2])
		conn.Close()
		// The handler has returned when the request is counted.
		deadline := time.Now().Add(30 * time.Second)
		for uploadsAnswered(t, f.s) <= before {
			if time.Now().After(deadline) {
				t.Fatal("the interrupted upload was never answered")
			}
			runtimeGosched()
		}
		f.noRelease(t, "1.0.2")
	})

	t.Run("store unreachable", func(t *testing.T) {
		big, bigSum := randomPayload(s3store.MinPartSize + 2<<20)
		// The S3 server stops in the middle of an upload, after its first part.
		r := &stopAfter{r: bytes.NewReader(big), at: s3store.MinPartSize + 1<<20, stop: s3.Stop}
		_, err := f.upload(ctx, "1.0.3", r, int64(len(big)), bigSum)
		if !adminclient.IsStatus(err, http.StatusServiceUnavailable) || !strings.Contains(err.Error(), "payload store is unavailable") {
			t.Fatalf("upload while the store went down: %v, want HTTP 503 saying the store is unavailable", err)
		}
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("download while the store is down: HTTP %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		s3.Restart()
		f.noRelease(t, "1.0.3")
		got, _ := fetchThrough(t, url, int64(len(payload)))
		if !bytes.Equal(got, payload) {
			t.Error("the payload is not served once the store is back")
		}
	})
}

// stopAfter calls stop once at bytes have been read.
type stopAfter struct {
	r    io.Reader
	at   int
	n    int
	stop func()
}

func (s *stopAfter) Read(p []byte) (int, error) {
	if s.n < s.at {
		p = p[:min(len(p), s.at-s.n)]
	} else if s.stop != nil {
		s.stop()
		s.stop = nil
	}
	n, err := s.r.Read(p)
	s.n += n
	return n, err
}

// sqliteStoreTB is a fresh SQLite store (sqliteStore for benchmarks too).
func sqliteStoreTB(tb testing.TB) store.Store {
	tb.Helper()
	st, err := sqlite.Open(tb.Context(), filepath.Join(tb.TempDir(), sqlite.FileName), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

func runtimeGosched() { runtime.Gosched() }

// uploadsAnswered counts the publish requests the server has answered, whatever the code.
func uploadsAnswered(t *testing.T, s *server.Server) float64 {
	t.Helper()
	mfs, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "switchyard_omaha_server_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "route" && lp.GetValue() == "/api/v1/apps/{app}/releases" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// TestCodebaseURL: with Config.CodebaseURL, offers of hosted payloads name the CDN.
func TestCodebaseURL(t *testing.T) {
	st := sqliteStore(t, nil)
	f := newFixtureConfig(t, st, server.Config{CodebaseURL: "https://cdn.example.com/payloads/"})
	f.setup()
	req, err := os.ReadFile("testdata/flatcar-check.xml")
	if err != nil {
		t.Fatal(err)
	}
	code, body := f.post(req)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	resp, err := omaha.ParseResponse(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	uc := resp.Apps[0].UpdateCheck
	want := "https://cdn.example.com/payloads/" + store.FlatcarAppID + "/amd64-usr/4081.2.0/"
	if uc == nil || len(uc.URLs) != 1 || uc.URLs[0].CodeBase != want {
		t.Fatalf("codebase: %s; want %s", body, want)
	}
}

// Package s3store is the payload store on S3-compatible object storage (AWS S3, MinIO,
// Ceph RGW, versitygw, …), so that every omaha-server replica serves the same payloads
// without a shared file system. It implements payloads.Store over aws-sdk-go-v2, chosen
// because its GetObject streams a byte range and its multipart API lets an upload of
// several GiB pass through one part buffer at a time.
//
// Configuration is one URL, s3://BUCKET/PREFIX?endpoint=URL&region=R (ParseURL): with an
// endpoint, requests use path-style addressing (http://endpoint/BUCKET/KEY), as
// self-hosted stores need. Credentials come from the aws.Config the caller loads (the
// command uses the SDK's default chain: AWS_* environment variables, shared files, roles).
//
// Layout: a file of payloads.Key{App, Board, Version, Name} is the object
// PREFIX/App/Board/Version/Name, the same path as the server's /packages/ URL, so a CDN
// in front of the bucket can use the same paths.
//
// Uploads: the bytes stream through a payloads.Verifier into a multipart upload (PartSize
// per part, one part in memory at a time); files of at most one part go up with a single
// PutObject after the whole body has been read and checked. The object is created only
// when the verifier has passed — CompleteMultipartUpload (or the PutObject) is sent after
// the size and SHA-256 check, with If-None-Match: * so that an upload never replaces an
// object another replica placed; anything else aborts the multipart upload, so a refused
// or interrupted upload leaves no object a host could fetch. Then the commit callback runs
// (the release row's insert); when it fails the object is deleted again. An object that
// already exists under the key (412) is ErrExists: it is either an upload through another
// replica or one whose release row was never written, which the operator removes.
//
// Reads: Open sends a HeadObject (so a missing object or an unreachable store is known
// before a response is started) and returns a lazy reader: each Read after a Seek opens
// one GetObject with Range: bytes=OFFSET- and streams it, so http.ServeContent's Range
// handling maps onto ranged GETs. Presign returns a short-lived presigned GET/HEAD URL for
// the redirect mode.
//
// Failures to reach the store (connection refused, timeouts, 5xx answers) are
// payloads.ErrUnavailable; the SDK retries at most MaxAttempts times so hosts get their
// 503 quickly.
package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithy "github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/switchyard-os/switchyard/omaha-server/payloads"
)

// Sizes and bounds.
const (
	// MinPartSize is the part size of multipart uploads (S3 needs at least 5 MiB); larger
	// files use larger parts to stay within S3's 10,000 parts.
	MinPartSize = 16 << 20
	maxParts    = 10000
	// MaxAttempts bounds the SDK's retries of one request.
	MaxAttempts = 2
)

// Location is a parsed --payload-store URL.
type Location struct {
	Bucket   string
	Prefix   string // without leading or trailing "/"; may be empty
	Endpoint string // empty: AWS's endpoint for Region
	Region   string
}

// ParseURL parses s3://BUCKET/PREFIX?endpoint=URL&region=R.
func ParseURL(raw string) (Location, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Location{}, fmt.Errorf("s3store: %w", err)
	}
	if u.Scheme != "s3" || u.Host == "" {
		return Location{}, fmt.Errorf("s3store: %q: want s3://BUCKET/PREFIX?endpoint=URL&region=R", raw)
	}
	loc := Location{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	q := u.Query()
	for k := range q {
		if k != "endpoint" && k != "region" {
			return Location{}, fmt.Errorf("s3store: %q: unknown parameter %q (endpoint, region)", raw, k)
		}
	}
	loc.Endpoint, loc.Region = q.Get("endpoint"), q.Get("region")
	if loc.Endpoint != "" {
		e, err := url.Parse(loc.Endpoint)
		if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
			return Location{}, fmt.Errorf("s3store: endpoint %q: want http(s)://HOST[:PORT]", loc.Endpoint)
		}
	}
	return loc, nil
}

// String is the URL form of l.
func (l Location) String() string {
	q := url.Values{}
	if l.Endpoint != "" {
		q.Set("endpoint", l.Endpoint)
	}
	if l.Region != "" {
		q.Set("region", l.Region)
	}
	u := url.URL{Scheme: "s3", Host: l.Bucket, Path: "/" + l.Prefix, RawQuery: q.Encode()}
	return u.String()
}

// Bucket is a payload store in one bucket under one prefix.
type Bucket struct {
	client  *s3.Client
	presign *s3.PresignClient
	loc     Location
	maxSize int64
}

// Open returns the store at loc; cfg carries credentials (and an HTTP client); maxSize
// caps one upload. It checks that the bucket answers, but an unreachable store is not an
// error here (replicas start while the store is down and answer 503 until it is back).
func Open(ctx context.Context, loc Location, cfg aws.Config, maxSize int64) (*Bucket, error) {
	cfg = cfg.Copy()
	if loc.Region != "" {
		cfg.Region = loc.Region
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	cfg.RetryMaxAttempts = MaxAttempts
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if loc.Endpoint != "" {
			o.BaseEndpoint = aws.String(loc.Endpoint)
			o.UsePathStyle = true
		}
		// Checksums only where the operation needs one: self-hosted stores differ in
		// which of the newer checksum headers they accept.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	b := &Bucket{client: client, presign: s3.NewPresignClient(client), loc: loc, maxSize: maxSize}
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(loc.Bucket)}); err != nil {
		if err := classify(err); !errors.Is(err, payloads.ErrUnavailable) {
			return nil, fmt.Errorf("s3store: bucket %s: %w", loc.Bucket, err)
		}
	}
	return b, nil
}

// Close implements payloads.Store; a Bucket holds nothing to release.
func (b *Bucket) Close() error { return nil }

// ObjectKey is the object that holds key.
func (b *Bucket) ObjectKey(key payloads.Key) (string, error) {
	if err := key.Check(); err != nil {
		return "", err
	}
	return path.Join(b.loc.Prefix, key.App, key.Board, key.Version, key.Name), nil
}

// Store implements payloads.Store (see the package comment).
func (b *Bucket) Store(ctx context.Context, key payloads.Key, r io.Reader, want payloads.Expect, commit func(payloads.Sums) error) (payloads.Sums, error) {
	obj, err := b.ObjectKey(key)
	if err != nil {
		return payloads.Sums{}, err
	}
	v, err := payloads.NewVerifier(ctx, r, want, b.maxSize)
	if err != nil {
		return payloads.Sums{}, err
	}
	partSize := max(int64(MinPartSize), (want.Size+maxParts-1)/maxParts)
	if want.Size <= partSize {
		err = b.putSingle(ctx, obj, v, want.Size)
	} else {
		err = b.putMultipart(ctx, obj, v, partSize)
	}
	if err != nil {
		return v.Sums(), err
	}
	sums := v.Sums()
	if err := commit(sums); err != nil {
		// The object is ours (If-None-Match): remove it even when ctx has ended.
		if _, derr := b.client.DeleteObject(context.WithoutCancel(ctx), &s3.DeleteObjectInput{Bucket: aws.String(b.loc.Bucket), Key: aws.String(obj)}); derr != nil {
			return sums, fmt.Errorf("%w (and removing the uploaded object %s failed: %v)", err, obj, derr)
		}
		return sums, err
	}
	return sums, nil
}

func (b *Bucket) putSingle(ctx context.Context, obj string, v *payloads.Verifier, size int64) error {
	buf := bytes.NewBuffer(make([]byte, 0, size))
	if _, err := io.Copy(buf, v); err != nil {
		return err
	}
	_, err := b.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(b.loc.Bucket), Key: aws.String(obj), Body: bytes.NewReader(buf.Bytes()),
		ContentLength: aws.Int64(size), ContentType: aws.String("application/octet-stream"),
		IfNoneMatch: aws.String("*"),
	})
	if err != nil {
		return fmt.Errorf("s3store: storing %s: %w", obj, classify(err))
	}
	return nil
}

func (b *Bucket) putMultipart(ctx context.Context, obj string, v *payloads.Verifier, partSize int64) (err error) {
	up, err := b.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(b.loc.Bucket), Key: aws.String(obj), ContentType: aws.String("application/octet-stream"),
	})
	if err != nil {
		return fmt.Errorf("s3store: starting the upload of %s: %w", obj, classify(err))
	}
	completed := false
	defer func() {
		if completed {
			return
		}
		// Nothing was created; drop the parts, even when ctx has ended.
		if _, aerr := b.client.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{
			Bucket: aws.String(b.loc.Bucket), Key: aws.String(obj), UploadId: up.UploadId,
		}); aerr != nil {
			err = fmt.Errorf("%w (and aborting the multipart upload failed: %v)", err, aerr)
		}
	}()
	buf := make([]byte, partSize)
	var parts []types.CompletedPart
	for n := int32(1); ; n++ {
		got, rerr := io.ReadFull(v, buf)
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			return rerr
		}
		if got > 0 {
			out, err := b.client.UploadPart(ctx, &s3.UploadPartInput{
				Bucket: aws.String(b.loc.Bucket), Key: aws.String(obj), UploadId: up.UploadId,
				PartNumber: aws.Int32(n), Body: bytes.NewReader(buf[:got]), ContentLength: aws.Int64(int64(got)),
			})
			if err != nil {
				return fmt.Errorf("s3store: uploading part %d of %s: %w", n, obj, classify(err))
			}
			parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
		}
		if rerr != nil {
			break
		}
	}
	if !v.Passed() {
		return fmt.Errorf("%w: the upload ended early", payloads.ErrMismatch)
	}
	_, err = b.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(b.loc.Bucket), Key: aws.String(obj), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		IfNoneMatch:     aws.String("*"),
	})
	if err != nil {
		return fmt.Errorf("s3store: completing the upload of %s: %w", obj, classify(err))
	}
	completed = true
	return nil
}

// Open implements payloads.Store.
func (b *Bucket) Open(ctx context.Context, key payloads.Key) (io.ReadSeekCloser, error) {
	obj, err := b.ObjectKey(key)
	if err != nil {
		return nil, err
	}
	head, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.loc.Bucket), Key: aws.String(obj)})
	if err != nil {
		return nil, fmt.Errorf("s3store: %s: %w", obj, classify(err))
	}
	return &object{ctx: ctx, b: b, key: obj, size: aws.ToInt64(head.ContentLength), etag: aws.ToString(head.ETag)}, nil
}

// Presign returns a URL that answers method (GET or HEAD) for key until ttl has passed.
func (b *Bucket) Presign(ctx context.Context, method string, key payloads.Key, ttl time.Duration) (string, error) {
	obj, err := b.ObjectKey(key)
	if err != nil {
		return "", err
	}
	opt := s3.WithPresignExpires(ttl)
	switch method {
	case http.MethodGet:
		r, err := b.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.loc.Bucket), Key: aws.String(obj)}, opt)
		if err != nil {
			return "", fmt.Errorf("s3store: presigning %s: %w", obj, err)
		}
		return r.URL, nil
	case http.MethodHead:
		r, err := b.presign.PresignHeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.loc.Bucket), Key: aws.String(obj)}, opt)
		if err != nil {
			return "", fmt.Errorf("s3store: presigning %s: %w", obj, err)
		}
		return r.URL, nil
	}
	return "", fmt.Errorf("s3store: cannot presign %s", method)
}

// object reads one object lazily: a Read after a Seek opens a ranged GetObject.
type object struct {
	ctx  context.Context
	b    *Bucket
	key  string
	size int64
	etag string

	off  int64
	body io.ReadCloser
}

func (o *object) Read(p []byte) (int, error) {
	if o.off >= o.size {
		return 0, io.EOF
	}
	if o.body == nil {
		in := &s3.GetObjectInput{Bucket: aws.String(o.b.loc.Bucket), Key: aws.String(o.key)}
		if o.off > 0 {
			in.Range = aws.String(fmt.Sprintf("bytes=%d-", o.off))
		}
		if o.etag != "" {
			// The object must be the one Open found.
			in.IfMatch = aws.String(o.etag)
		}
		out, err := o.b.client.GetObject(o.ctx, in)
		if err != nil {
			return 0, fmt.Errorf("s3store: reading %s at %d: %w", o.key, o.off, classify(err))
		}
		o.body = out.Body
	}
	n, err := o.body.Read(p)
	o.off += int64(n)
	if err == io.EOF && o.off < o.size {
		err = fmt.Errorf("s3store: %s ended at %d of %d bytes: %w", o.key, o.off, o.size, io.ErrUnexpectedEOF)
	}
	return n, err
}

func (o *object) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = o.off + offset
	case io.SeekEnd:
		abs = o.size + offset
	default:
		return 0, errors.New("s3store: bad whence")
	}
	if abs < 0 {
		return 0, errors.New("s3store: negative position")
	}
	if abs != o.off && o.body != nil {
		o.body.Close()
		o.body = nil
	}
	o.off = abs
	return abs, nil
}

func (o *object) Close() error {
	if o.body != nil {
		err := o.body.Close()
		o.body = nil
		return err
	}
	return nil
}

// classify maps an SDK error onto the payloads sentinels: a missing object is
// fs.ErrNotExist, an existing one (a failed If-None-Match) ErrExists, anything that shows
// the store could not answer ErrUnavailable.
func classify(err error) error {
	var apiErr smithy.APIError
	var respErr *smithyhttp.ResponseError
	var sendErr *smithyhttp.RequestSendError
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusNotFound:
		return fmt.Errorf("%w: %w", fs.ErrNotExist, err)
	case errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusPreconditionFailed:
		return fmt.Errorf("%w: %w", payloads.ErrExists, err)
	case errors.As(err, &respErr) && respErr.HTTPStatusCode() >= 500:
		return fmt.Errorf("%w: %w", payloads.ErrUnavailable, err)
	case errors.As(err, &apiErr) && (apiErr.ErrorCode() == "NoSuchKey" || apiErr.ErrorCode() == "NotFound"):
		return fmt.Errorf("%w: %w", fs.ErrNotExist, err)
	case errors.As(err, &sendErr), errors.As(err, &netErr):
		return fmt.Errorf("%w: %w", payloads.ErrUnavailable, err)
	}
	return err
}

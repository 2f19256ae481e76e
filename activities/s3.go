package activities

import (
	"context"
	"fmt"
	"net/url"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/spec"
)

// ProbeS3Input is the object store to probe.
type ProbeS3Input struct {
	// S3 is the spec's integrations.s3 section, secrets as references.
	S3 spec.S3 `json:"s3"`
	ProbeWindow
}

// ProbeS3 waits until the object store answers a HEAD on OpenCTI's bucket with
// the configured keys; a missing bucket is fine, EnsureBucket creates it.
func (a *Activities) ProbeS3(ctx context.Context, in ProbeS3Input) (ProbeResult, error) {
	s := s3Defaults(in.S3)
	mc, done, err := a.s3Client(s)
	if err != nil {
		return ProbeResult{Dependency: "s3"}, classify(err)
	}
	defer done()
	// HEAD on the bucket is what OpenCTI does at start; unlike ListBuckets it
	// needs no account-wide right, so a bucket-scoped key passes as it should.
	return a.poll(ctx, "s3", in.Window, func(ctx context.Context) (string, error) {
		if _, err := mc.BucketExists(ctx, s.Bucket); err != nil {
			return "", s3Error(s, "check bucket "+s.Bucket, err)
		}
		return "", nil // S3 has no version call an ordinary key may use
	})
}

// EnsureBucketInput is the bucket to create when missing.
type EnsureBucketInput struct {
	// S3 is the spec's integrations.s3 section, secrets as references.
	S3 spec.S3 `json:"s3"`
}

// EnsureBucketResult says which bucket exists now and whether this call made it.
type EnsureBucketResult struct {
	// Bucket is the bucket's name.
	Bucket string `json:"bucket"`
	// Created is false when the bucket already existed.
	Created bool `json:"created"`
}

// EnsureBucket creates OpenCTI's bucket when it does not exist; it is idempotent,
// so a retried or resumed deploy never fails on a bucket it made itself.
func (a *Activities) EnsureBucket(ctx context.Context, in EnsureBucketInput) (EnsureBucketResult, error) {
	s := s3Defaults(in.S3)
	res := EnsureBucketResult{Bucket: s.Bucket}
	mc, done, err := a.s3Client(s)
	if err != nil {
		return res, classify(err)
	}
	defer done()
	// Each call gets its own bound, so a store that hangs costs one attempt of the
	// activity, not its whole start-to-close timeout.
	existsCtx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
	exists, err := mc.BucketExists(existsCtx, s.Bucket)
	cancel()
	if err != nil {
		return res, classify(s3Error(s, "check bucket "+s.Bucket, err))
	}
	if exists {
		return res, nil
	}
	makeCtx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
	err = mc.MakeBucket(makeCtx, s.Bucket, minio.MakeBucketOptions{Region: s.Region})
	cancel()
	switch code := minio.ToErrorResponse(err).Code; {
	case err == nil:
		res.Created = true
		return res, nil
	case code == minio.BucketAlreadyOwnedByYou:
		// Another attempt (or OpenCTI itself) created it since the HEAD above.
		return res, nil
	case code == minio.BucketAlreadyExists:
		return res, permanent(ErrTypeBadConfig, fmt.Errorf(
			"cannot create s3 bucket %s at %s: the name is taken by another account; choose another integrations.s3.bucket",
			s.Bucket, s.Endpoint))
	}
	return res, classify(s3Error(s, "create bucket "+s.Bucket, err))
}

// s3Defaults fills what the spec pipeline normally defaults, so the activities
// also work when called with a partial section.
func s3Defaults(s spec.S3) spec.S3 {
	if s.Endpoint == "" {
		s.Endpoint = spec.DefaultS3Endpoint
	}
	if s.Region == "" {
		s.Region = spec.DefaultS3Region
	}
	if s.Bucket == "" {
		s.Bucket = opencti.DefaultS3Bucket
	}
	return s
}

// s3Client builds a minio client with the resolved keys and minio-go's internal
// retries off (MaxRetries 1 is a single attempt): callers decide when to try again.
// done closes its idle connections, which a long-lived worker would otherwise keep.
func (a *Activities) s3Client(s spec.S3) (mc *minio.Client, done func(), err error) {
	u, err := url.Parse(s.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, nil, &errPermanent{ErrTypeInvalidInput, fmt.Errorf(
			"cannot use s3 endpoint %q: want http(s)://host[:port] without a path in integrations.s3.endpoint", s.Endpoint)}
	}
	if err := s3utils.CheckValidBucketNameStrict(s.Bucket); err != nil {
		return nil, nil, &errPermanent{ErrTypeInvalidInput, fmt.Errorf(
			"cannot use s3 bucket %q: %w; fix integrations.s3.bucket", s.Bucket, err)}
	}
	accessKey, err := a.resolve("integrations.s3.accessKey", s.AccessKey)
	if err != nil {
		return nil, nil, err
	}
	secretKey, err := a.resolve("integrations.s3.secretKey", s.SecretKey)
	if err != nil {
		return nil, nil, err
	}
	transport, err := minio.DefaultTransport(u.Scheme == "https")
	if err != nil {
		return nil, nil, fmt.Errorf("cannot build an s3 transport: %w", err)
	}
	mc, err = minio.New(u.Host, &minio.Options{
		Creds:      credentials.NewStaticV4(accessKey, secretKey, ""),
		Secure:     u.Scheme == "https",
		Transport:  transport,
		Region:     s.Region, // set, so minio-go never spends a call on GetBucketLocation
		MaxRetries: 1,
	})
	if err != nil {
		return nil, nil, &errPermanent{ErrTypeInvalidInput, fmt.Errorf("cannot configure an s3 client for %s: %w", s.Endpoint, err)}
	}
	return mc, transport.CloseIdleConnections, nil
}

// s3Error makes refused keys and unusable bucket names permanent and keeps an
// unreachable or starting store as a reason to wait.
func s3Error(s spec.S3, what string, err error) error {
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch":
		return &errPermanent{ErrTypeAuthFailed, fmt.Errorf(
			"cannot %s at s3 %s: the store refused the keys (%s); check integrations.s3.accessKey and integrations.s3.secretKey",
			what, s.Endpoint, resp.Code)}
	case "AccessDenied":
		return &errPermanent{ErrTypeAuthFailed, fmt.Errorf(
			"cannot %s at s3 %s: access denied; check the keys and that their policy allows the bucket", what, s.Endpoint)}
	case "InvalidBucketName", "XMinioInvalidObjectName":
		return &errPermanent{ErrTypeInvalidInput, fmt.Errorf(
			"cannot %s at s3 %s: %q is not a valid bucket name; fix integrations.s3.bucket", what, s.Endpoint, s.Bucket)}
	case "":
		// Not an S3 answer at all: the request never got one.
		return fmt.Errorf("cannot reach s3 at %s: %s", s.Endpoint, netReason(err))
	}
	return fmt.Errorf("cannot %s at s3 %s: %s (HTTP %d)", what, s.Endpoint, err, resp.StatusCode)
}

package openctistandin

import (
	"context"
	"fmt"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3Backend is the S3-compatible file storage (MinIO in OpenCTI's compose file).
type s3Backend struct {
	client *minio.Client
	bucket string
	region string
}

// newS3Backend builds the client without contacting the server.
func newS3Backend(cfg S3Config) (*s3Backend, error) {
	client, err := minio.New(cfg.Address(), &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.UseSSL,
		Region: cfg.BucketRegion,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot build S3 client for %s: %w", cfg.Address(), err)
	}
	return &s3Backend{client: client, bucket: cfg.BucketName, region: cfg.BucketRegion}, nil
}

func (s *s3Backend) label() string { return "File storage" }

// check asks whether the bucket exists: a signed request, so wrong keys fail here
// even before the bucket is created. The error is the S3 client's own.
func (s *s3Backend) check(ctx context.Context) (string, error) {
	if _, err := s.client.BucketExists(ctx, s.bucket); err != nil {
		return "", err
	}
	return "", nil
}

// report passes the raw S3 error through, as OpenCTI's storageInit does.
func (s *s3Backend) report(err error) error { return err }

// ensureBucket creates the bucket if missing; idempotent because a re-run of an
// interrupted first boot must not fail on the bucket (it fails on the indices).
func (s *s3Backend) ensureBucket(ctx context.Context) error {
	exists, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("cannot query bucket %s: %w", s.bucket, err)
	}
	if exists {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.region})
	if err != nil {
		code := minio.ToErrorResponse(err).Code
		if code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
			return nil
		}
		return fmt.Errorf("cannot create bucket %s: %w", s.bucket, err)
	}
	return nil
}

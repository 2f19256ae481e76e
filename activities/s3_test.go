package activities_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
)

func stackS3(t *testing.T) spec.S3 {
	st := stacktest.Get(t)
	return spec.S3{
		Endpoint: st.S3Endpoint, Region: st.S3Region, Bucket: fmt.Sprintf("socflow-test-%d", time.Now().UnixNano()),
		AccessKey: spec.SecretRef(st.S3AccessKey), SecretKey: spec.SecretRef(st.S3SecretKey),
	}
}

// removeBucketAtEnd deletes the test's bucket, if it was made, when the test ends.
func removeBucketAtEnd(t *testing.T, s spec.S3) {
	t.Helper()
	st := stacktest.Get(t)
	u, err := url.Parse(st.S3Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(st.S3AccessKey, st.S3SecretKey, ""), Region: st.S3Region})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if ok, _ := mc.BucketExists(ctx, s.Bucket); ok {
			if err := mc.RemoveBucket(ctx, s.Bucket); err != nil {
				t.Errorf("cannot remove test bucket %s: %v", s.Bucket, err)
			}
		}
	})
}

func TestProbeS3Ready(t *testing.T) {
	// The bucket does not exist yet: the probe checks the store and the keys,
	// EnsureBucket makes the bucket.
	res, err := runProbe(t, probeEnv(t), nilActs.ProbeS3, activities.ProbeS3Input{S3: stackS3(t)})
	if err != nil || !res.Ready || res.Dependency != "s3" {
		t.Fatalf("probe: %+v, %v; want ready", res, err)
	}
}

func TestProbeS3WrongKeys(t *testing.T) {
	for name, mutate := range map[string]func(*spec.S3){
		"secret key": func(s *spec.S3) { s.SecretKey = "wrong-secret-key" },
		"access key": func(s *spec.S3) { s.AccessKey = "no-such-access-key" },
	} {
		t.Run(name, func(t *testing.T) {
			s := stackS3(t)
			mutate(&s)
			_, err := runProbe(t, probeEnv(t), nilActs.ProbeS3, activities.ProbeS3Input{S3: s})
			requirePermanent(t, err, activities.ErrTypeAuthFailed, "s3", s.Endpoint, "integrations.s3.secretKey")
		})
	}
}

func TestProbeS3Unreachable(t *testing.T) {
	s := stackS3(t)
	s.Endpoint = "http://" + unreachable
	res, err := runProbe(t, probeEnv(t), nilActs.ProbeS3,
		activities.ProbeS3Input{S3: s, ProbeWindow: activities.ProbeWindow{Window: shortWindow}})
	requireNotReady(t, res, err, "s3", s.Endpoint, "connection refused")
}

func TestProbeS3MissingSecret(t *testing.T) {
	s := stackS3(t)
	s.SecretKey = missingEnvRef(t)
	_, err := runProbe(t, probeEnv(t), nilActs.ProbeS3, activities.ProbeS3Input{S3: s})
	requirePermanent(t, err, activities.ErrTypeSecretUnavailable, "integrations.s3.secretKey")
}

func TestProbeS3InvalidBucketName(t *testing.T) {
	s := stackS3(t)
	s.Bucket = "Not_A_Bucket"
	_, err := runProbe(t, probeEnv(t), nilActs.ProbeS3, activities.ProbeS3Input{S3: s})
	requirePermanent(t, err, activities.ErrTypeInvalidInput, "Not_A_Bucket", "integrations.s3.bucket")
}

func TestEnsureBucketIsIdempotent(t *testing.T) {
	s := stackS3(t)
	removeBucketAtEnd(t, s)
	env := probeEnv(t)
	for i, wantCreated := range []bool{true, false} {
		v, err := env.ExecuteActivity(nilActs.EnsureBucket, activities.EnsureBucketInput{S3: s})
		if err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		var res activities.EnsureBucketResult
		if err := v.Get(&res); err != nil {
			t.Fatal(err)
		}
		if res.Bucket != s.Bucket || res.Created != wantCreated {
			t.Fatalf("call %d: %+v; want bucket %s created=%v", i+1, res, s.Bucket, wantCreated)
		}
	}
	res, err := runProbe(t, env, nilActs.ProbeS3, activities.ProbeS3Input{S3: s})
	if err != nil || !res.Ready {
		t.Fatalf("probe after EnsureBucket: %+v, %v", res, err)
	}
}

func TestEnsureBucketWrongKeys(t *testing.T) {
	s := stackS3(t)
	s.SecretKey = "wrong-secret-key"
	_, err := probeEnv(t).ExecuteActivity(nilActs.EnsureBucket, activities.EnsureBucketInput{S3: s})
	requirePermanent(t, err, activities.ErrTypeAuthFailed, "s3", "integrations.s3.secretKey")
}

func TestEnsureBucketUnreachableIsRetryable(t *testing.T) {
	s := stackS3(t)
	s.Endpoint = "http://" + unreachable
	_, err := probeEnv(t).ExecuteActivity(nilActs.EnsureBucket, activities.EnsureBucketInput{S3: s})
	requireRetryable(t, err, "connection refused")
}

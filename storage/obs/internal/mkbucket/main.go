// Command mkbucket creates a bucket on an S3-compatible server if it is
// missing. deploy/services/minio.sh runs it (there is no `mc` here) once
// MinIO answers; it waits up to -wait for the server to accept requests.
//
//	go run ./storage/obs/internal/mkbucket -endpoint http://127.0.0.1:19000 \
//	    -access-key-file F -secret-key-file F -bucket kbr-test
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func main() {
	endpoint := flag.String("endpoint", "", "http(s)://host:port")
	akFile := flag.String("access-key-file", "", "file holding the access key")
	skFile := flag.String("secret-key-file", "", "file holding the secret key")
	bucket := flag.String("bucket", "", "bucket to create")
	region := flag.String("region", "us-east-1", "region")
	wait := flag.Duration("wait", time.Minute, "how long to wait for the server")
	flag.Parse()
	if err := run(*endpoint, *akFile, *skFile, *bucket, *region, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "mkbucket:", err)
		os.Exit(1)
	}
}

func readKey(f string) (string, error) {
	b, err := os.ReadFile(f)
	return strings.TrimRight(string(b), "\r\n"), err
}

func run(endpoint, akFile, skFile, bucket, region string, wait time.Duration) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return fmt.Errorf("bad -endpoint %q", endpoint)
	}
	ak, err := readKey(akFile)
	if err != nil {
		return err
	}
	sk, err := readKey(skFile)
	if err != nil {
		return err
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds: credentials.NewStaticV4(ak, sk, ""), Secure: u.Scheme == "https",
		Region: region, BucketLookup: minio.BucketLookupPath, MaxRetries: 1,
	})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ok, err := c.BucketExists(ctx, bucket)
		if err == nil && !ok {
			err = c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: region})
			if err == nil {
				fmt.Printf("created bucket %s\n", bucket)
			}
		}
		cancel()
		if err == nil {
			return nil
		}
		if code := minio.ToErrorResponse(err).Code; code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || code == "AccessDenied" {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bucket %s on %s: %w", bucket, endpoint, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

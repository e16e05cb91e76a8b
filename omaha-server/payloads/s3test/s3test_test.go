package s3test_test

import (
	"net/http"
	"testing"

	"github.com/switchyard-os/switchyard/omaha-server/payloads/s3test"
)

// TestGateway: the gateway builds, answers S3 on loopback (an unsigned request is refused (400 or 403)
// as a real S3 server refuses it), is unreachable after Stop and answers again after
// Restart. `make deps` runs it to build the gateway before the suite.
func TestGateway(t *testing.T) {
	s := s3test.Start(t)
	s.CreateBucket("b")
	get := func() (int, error) {
		resp, err := http.Get(s.Endpoint + "/b/missing")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get(); err != nil || (code != http.StatusForbidden && code != http.StatusBadRequest) {
		t.Fatalf("unsigned GET: HTTP %d, %v; want 400 or 403", code, err)
	}
	s.Stop()
	if _, err := get(); err == nil {
		t.Fatal("the gateway still answers after Stop")
	}
	s.Restart()
	if code, err := get(); err != nil || (code != http.StatusForbidden && code != http.StatusBadRequest) {
		t.Fatalf("after Restart: HTTP %d, %v; want 400 or 403", code, err)
	}
}

package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHTTPTimeoutCannotBeOff: HTTP_TIMEOUT=0 once meant no timeout at all for Omaha and TUF
// requests; a configuration that says so is refused, naming the key, and a negative one
// already fails to parse.
func TestHTTPTimeoutCannotBeOff(t *testing.T) {
	for _, v := range []string{"0", "0s", "0ms"} {
		t.Run(v, func(t *testing.T) {
			conf := filepath.Join(t.TempDir(), "update.conf")
			if err := os.WriteFile(conf, []byte("HTTP_TIMEOUT="+v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			c := Default()
			if err := c.Load(conf); err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "HTTP_TIMEOUT must be above zero") {
				t.Fatalf("Validate with HTTP_TIMEOUT=%s: %v", v, err)
			}
		})
	}
	c := Default()
	if err := c.Set("HTTP_TIMEOUT", "-1s"); err == nil || !strings.Contains(err.Error(), "HTTP_TIMEOUT") {
		t.Errorf("HTTP_TIMEOUT=-1s: %v", err)
	}
	if err := c.Set("HTTP_TIMEOUT", "30s"); err != nil || c.Validate() != nil || c.HTTPTimeout.Seconds() != 30 {
		t.Errorf("HTTP_TIMEOUT=30s: %v, %v", err, c.Validate())
	}
}

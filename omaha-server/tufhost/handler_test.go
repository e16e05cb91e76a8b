package tufhost

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
)

func TestHandler(t *testing.T) {
	onStorages(t, func(t *testing.T, kind string) {
		f := newFixtureOn(t, kind, 1, 1)
		content := []byte("0123456789abcdef")
		p := f.payload(content, "1.0.0")
		unstored := f.payload([]byte("not in the store"), "1.0.1")
		hash := hexOf(p.SHA256[:])
		f.publish(Upload{Targets: f.signTargets(1, tuf.Expiry(f.clock.Now(), tuf.DefaultTargetsExpiry), f.targetKey,
			map[string]repo.Target{"amd64-usr/1.0.0/payload": p, "top": p, "amd64-usr/1.0.1/payload": unstored})})
		if err := removeFile(f, unstored); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name, method, path, rangeHdr string
			status                       int
			ctype, body                  string
		}{
			{name: "root", path: "/tuf/1.root.json", status: 200, ctype: "application/json"},
			{name: "root alias", path: "/tuf/root.json", status: 200, ctype: "application/json"},
			{name: "next root", path: "/tuf/2.root.json", status: 404},
			{name: "timestamp", path: "/tuf/timestamp.json", status: 200, ctype: "application/json"},
			{name: "snapshot", path: "/tuf/1.snapshot.json", status: 200, ctype: "application/json"},
			{name: "targets", path: "/tuf/1.targets.json", status: 200, ctype: "application/json"},
			{name: "unversioned snapshot", path: "/tuf/snapshot.json", status: 404},
			{name: "zero version", path: "/tuf/0.root.json", status: 404},
			{name: "leading zero", path: "/tuf/01.root.json", status: 404},
			{name: "traversal", path: "/tuf/../1.root.json", status: 404},
			{name: "unknown", path: "/tuf/foo", status: 404},
			{name: "target", path: "/tuf/targets/amd64-usr/1.0.0/" + hash + ".payload", status: 200, ctype: "application/octet-stream", body: string(content)},
			{name: "top-level target", path: "/tuf/targets/" + hash + ".top", status: 200, body: string(content)},
			{name: "target range", path: "/tuf/targets/top", status: 404},
			{name: "target range ok", path: "/tuf/targets/" + hash + ".top", rangeHdr: "bytes=10-", status: 206, body: "abcdef"},
			{name: "target head", method: "HEAD", path: "/tuf/targets/" + hash + ".top", status: 200},
			{name: "target wrong hash", path: "/tuf/targets/amd64-usr/1.0.0/" + strings.Repeat("0", 64) + ".payload", status: 404},
			{name: "target wrong dir", path: "/tuf/targets/arm64-usr/1.0.0/" + hash + ".payload", status: 404},
			{name: "pinned but missing from the store", path: "/tuf/targets/amd64-usr/1.0.1/" + hexOf(unstored.SHA256[:]) + ".payload", status: 404},
			{name: "post", method: "POST", path: "/tuf/timestamp.json", status: 405},
			{name: "long path", path: "/tuf/" + strings.Repeat("a", 600), status: 404},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				method := tt.method
				if method == "" {
					method = http.MethodGet
				}
				req, err := http.NewRequest(method, f.srv.URL+tt.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tt.rangeHdr != "" {
					req.Header.Set("Range", tt.rangeHdr)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.status {
					t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.status, body)
				}
				if tt.ctype != "" && resp.Header.Get("Content-Type") != tt.ctype {
					t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tt.ctype)
				}
				if tt.body != "" && string(body) != tt.body {
					t.Errorf("body %q, want %q", body, tt.body)
				}
			})
		}
	})
}

func TestHandlerBeforePublish(t *testing.T) {
	onStorages(t, func(t *testing.T, kind string) {
		f := newFixtureOn(t, kind, 1, 1)
		for path, want := range map[string]int{"/tuf/1.root.json": 200, "/tuf/timestamp.json": 404, "/tuf/1.targets.json": 404} {
			resp, err := http.Get(f.srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
			}
		}
	})
}

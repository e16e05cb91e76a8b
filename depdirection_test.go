// Package switchyard_test holds the checks that keep the module's shape: the dependency
// direction between the top-level areas of DESIGN.md section 2, and a doc comment on every
// package.
package switchyard_test

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/switchyard-os/switchyard"

// listedPackage is the part of `go list -json` output the checks read.
type listedPackage struct {
	ImportPath   string
	Name         string
	Doc          string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func listPackages(t *testing.T) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

// area returns the top-level area of an import path inside the module ("" for the root),
// with partitions/* and cmd/* kept one level deeper.
func area(path string) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
	first, _, _ := strings.Cut(rel, "/")
	return first
}

// allowed lists, for each area, the areas of this module its non-test code may import.
// An area may always import its own sub-packages.
// internal holds the module's small shared mechanisms (atomic file replacement, bounded file
// reads): every area may import it, and it imports nothing of ours and nothing outside the
// standard library, so that importing it adds no dependency to any area.
var allowedAreas = map[string][]string{
	"internal":      {},
	"omaha":         {"internal"},
	"partitions":    {"internal"},
	"signing":       {"internal"},
	"rebootlock":    {"internal"},
	"update-engine": {"internal", "omaha", "partitions", "signing", "rebootlock"},
	"omaha-server":  {"internal", "omaha", "signing", "rebootlock"},
	"cmd":           {"internal", "omaha", "partitions", "signing", "rebootlock", "update-engine", "omaha-server", "sdnotify"},
	"testimages":    {"internal", "omaha", "partitions", "signing", "rebootlock", "update-engine", "omaha-server"},
	"":              {},
	// sdnotify speaks systemd's sd_notify protocol for the daemons in cmd; packaging holds
	// the package definitions and units, and Go only in its tests.
	"sdnotify":  {},
	"packaging": {},
}

func TestDependencyDirection(t *testing.T) {
	for _, p := range listPackages(t) {
		from := area(p.ImportPath)
		allowed, ok := allowedAreas[from]
		if !ok {
			t.Errorf("%s: area %q is not one of DESIGN.md section 2", p.ImportPath, from)
			continue
		}
		check := func(imports []string, test bool) {
			for _, imp := range imports {
				if strings.HasPrefix(imp, "go.etcd.io/etcd/client") && from != "rebootlock" && !test {
					t.Errorf("%s imports %s: only rebootlock may import the etcd client", p.ImportPath, imp)
				}
				if strings.HasPrefix(imp, "go.etcd.io/etcd/server") && !test && from != "testimages" && !strings.HasSuffix(p.ImportPath, "/etcdtest") {
					t.Errorf("%s imports %s: the embedded etcd server is for tests and test harnesses only", p.ImportPath, imp)
				}
				internal := imp == module || strings.HasPrefix(imp, module+"/")
				if (from == "omaha" || from == "internal") && !internal && strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
					t.Errorf("%s imports %s: %s uses the standard library only", p.ImportPath, imp, from)
				}
				if !internal {
					continue
				}
				to := area(imp)
				if to == from {
					continue
				}
				if to == "cmd" || to == "testimages" {
					t.Errorf("%s imports %s: nothing imports %s", p.ImportPath, imp, to)
					continue
				}
				if test && from != "internal" && from != "omaha" && from != "partitions" && from != "signing" && from != "rebootlock" {
					// Tests of the composing areas may use any library area.
					continue
				}
				ok := false
				for _, a := range allowed {
					ok = ok || a == to
				}
				if !ok {
					t.Errorf("%s imports %s: %s may not depend on %s (DESIGN.md section 2)", p.ImportPath, imp, from, to)
				}
			}
		}
		check(p.Imports, false)
		check(p.TestImports, true)
		check(p.XTestImports, true)
	}
}

func TestEveryPackageHasDocComment(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("%s: package has no doc comment (STYLE.md: every package starts with one)", p.ImportPath)
		}
	}
}

func TestAreaOf(t *testing.T) {
	tests := []struct {
		path, want string
	}{
		{module, ""},
		{module + "/omaha", "omaha"},
		{module + "/partitions/gpt", "partitions"},
		{module + "/omaha-server/store/sqlite", "omaha-server"},
		{module + "/internal/atomicfile", "internal"},
	}
	for _, tt := range tests {
		if got := area(tt.path); got != tt.want {
			t.Errorf("area(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

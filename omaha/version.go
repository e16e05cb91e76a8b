package omaha

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Version is a release version as Flatcar numbers them: two to four dot-separated decimal
// components ("4081.2.0", ChromeOS's "0.0.0.0"), an optional pre-release after "-" and optional
// build metadata after "+" ("4081.2.0+nightly-20240101"). Ordering follows semantic
// versioning: components numerically (a missing component counts as 0, so 1.2 equals 1.2.0),
// then a version with a pre-release sorts before the same version without one, pre-release
// identifiers compared dot by dot (numeric ones numerically and below alphanumeric ones), and
// build metadata does not take part in ordering.
//
// The zero Version is "0.0.0" and sorts first. Compare versions with Compare or Less, not
// with ==: "1.2" and "1.2.0" order equal but are different values.
type Version struct {
	nums  [maxVersionParts]uint64
	n     int // number of components written, 0 for the zero Version
	pre   string
	build string
}

const (
	maxVersionParts = 4
	maxVersionLen   = 128
)

// ErrVersion is wrapped by every error from ParseVersion.
var ErrVersion = errors.New("omaha: invalid version")

// VersionError is a string that is not a version.
type VersionError struct {
	Value  string
	Reason string
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("omaha: invalid version %q: %s", truncate(e.Value, 64), e.Reason)
}

func (e *VersionError) Unwrap() error { return ErrVersion }

// ParseVersion parses a version string.
func ParseVersion(s string) (Version, error) {
	bad := func(reason string) (Version, error) {
		return Version{}, &VersionError{Value: s, Reason: reason}
	}
	if s == "" {
		return bad("empty")
	}
	if len(s) > maxVersionLen {
		return bad(fmt.Sprintf("longer than %d bytes", maxVersionLen))
	}
	var v Version
	rest := s
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		v.build = rest[i+1:]
		rest = rest[:i]
		if err := checkIdents(v.build, false); err != "" {
			return bad("build metadata: " + err)
		}
	}
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		v.pre = rest[i+1:]
		rest = rest[:i]
		if err := checkIdents(v.pre, true); err != "" {
			return bad("pre-release: " + err)
		}
	}
	parts := strings.Split(rest, ".")
	if len(parts) < 2 || len(parts) > maxVersionParts {
		return bad(fmt.Sprintf("want 2 to %d numeric components", maxVersionParts))
	}
	for i, p := range parts {
		if p == "" {
			return bad("empty component")
		}
		if len(p) > 1 && p[0] == '0' {
			return bad("leading zero in component " + p)
		}
		for j := 0; j < len(p); j++ {
			if p[j] < '0' || p[j] > '9' {
				return bad("component " + truncate(p, 16) + " is not a decimal number")
			}
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return bad("component " + truncate(p, 24) + " out of range")
		}
		v.nums[i] = n
	}
	v.n = len(parts)
	return v, nil
}

// checkIdents checks dot-separated identifiers of [0-9A-Za-z-]; numeric pre-release
// identifiers may not have leading zeros.
func checkIdents(s string, pre bool) string {
	if s == "" {
		return "empty"
	}
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return "empty identifier"
		}
		numeric := true
		for i := 0; i < len(id); i++ {
			c := id[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				numeric = false
			default:
				return fmt.Sprintf("character %q not allowed", c)
			}
		}
		if pre && numeric && len(id) > 1 && id[0] == '0' {
			return "leading zero in " + id
		}
	}
	return ""
}

// String returns the version in its canonical spelling (as parsed).
func (v Version) String() string {
	n := v.n
	if n == 0 {
		n = 3
	}
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.FormatUint(v.nums[i], 10))
	}
	if v.pre != "" {
		b.WriteByte('-')
		b.WriteString(v.pre)
	}
	if v.build != "" {
		b.WriteByte('+')
		b.WriteString(v.build)
	}
	return b.String()
}

// PreRelease returns the part after "-", without it.
func (v Version) PreRelease() string { return v.pre }

// Build returns the build metadata after "+", without it.
func (v Version) Build() string { return v.build }

// Components returns the numeric components.
func (v Version) Components() []uint64 {
	if v.n == 0 {
		return []uint64{0, 0, 0}
	}
	return append([]uint64(nil), v.nums[:v.n]...)
}

// Compare returns -1, 0 or +1 as v sorts before, with or after w. Build metadata is ignored.
func (v Version) Compare(w Version) int {
	for i := 0; i < maxVersionParts; i++ {
		if v.nums[i] != w.nums[i] {
			if v.nums[i] < w.nums[i] {
				return -1
			}
			return 1
		}
	}
	return comparePre(v.pre, w.pre)
}

// Less reports whether v sorts before w.
func (v Version) Less(w Version) bool { return v.Compare(w) < 0 }

func comparePre(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		return 1
	case b == "":
		return -1
	}
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if c := compareIdent(as[i], bs[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(as) < len(bs):
		return -1
	case len(as) > len(bs):
		return 1
	}
	return 0
}

func compareIdent(a, b string) int {
	aNum, bNum := isNumeric(a), isNumeric(b)
	switch {
	case aNum && bNum:
		// No leading zeros, so the longer number is the larger one.
		if len(a) != len(b) {
			if len(a) < len(b) {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	case aNum:
		return -1
	case bNum:
		return 1
	}
	return strings.Compare(a, b)
}

func isNumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

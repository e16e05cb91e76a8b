package omaha

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestParseHashSHA256(t *testing.T) {
	sum := sha256.Sum256([]byte("payload"))
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"hex, as Nebraska writes it", hex.EncodeToString(sum[:]), true},
		{"upper-case hex", strings.ToUpper(hex.EncodeToString(sum[:])), true},
		{"base64, as go-omaha writes it", base64.StdEncoding.EncodeToString(sum[:]), true},
		{"empty", "", false},
		{"short hex", hex.EncodeToString(sum[:31]), false},
		{"base64 of 31 bytes", base64.StdEncoding.EncodeToString(sum[:31]), false},
		{"base64 of 33 bytes", base64.StdEncoding.EncodeToString(append(sum[:], 0)), false},
		{"unpadded base64", base64.RawStdEncoding.EncodeToString(sum[:]), false},
		{"URL base64", strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString(sum[:])) + "-", false},
		{"hex with a space", " " + hex.EncodeToString(sum[:])[1:], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ParseHashSHA256(tt.in)
			if tt.ok {
				if err != nil || !bytes.Equal(b, sum[:]) {
					t.Fatalf("ParseHashSHA256(%q) = %x, %v", tt.in, b, err)
				}
				return
			}
			if !errors.Is(err, ErrHashSHA256) {
				t.Fatalf("ParseHashSHA256(%q) = %x, %v, want ErrHashSHA256", tt.in, b, err)
			}
		})
	}
}

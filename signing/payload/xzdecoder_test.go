package payload

import (
	"errors"
	"os/exec"
	"testing"
)

func TestXZDecoderCommand(t *testing.T) {
	if p, err := XZDecoderCommand("go"); p != "" || err != nil {
		t.Errorf("go: %q, %v", p, err)
	}
	if _, err := XZDecoderCommand("lzip"); !errors.Is(err, ErrUnknownXZDecoder) {
		t.Errorf("lzip: %v, want ErrUnknownXZDecoder", err)
	}
	want, lookErr := exec.LookPath("xz")
	if p, err := XZDecoderCommand("auto"); p != want || err != nil {
		t.Errorf("auto: %q, %v; want %q", p, err, want)
	}
	p, err := XZDecoderCommand("xz-utils")
	if (err == nil) != (lookErr == nil) || p != want {
		t.Errorf("xz-utils: %q, %v; xz on PATH: %q, %v", p, err, want, lookErr)
	}
}

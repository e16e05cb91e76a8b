package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/partitions/gpt"
	"github.com/switchyard-os/switchyard/partitions/gpttest"
	"github.com/switchyard-os/switchyard/partitions/layout"
)

func TestMkdisk(t *testing.T) {
	dir := t.TempDir()
	usr := filepath.Join(dir, "usr.img")
	if err := os.WriteFile(usr, bytes.Repeat([]byte{0xAB}, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		ss   int
		usr  int64
	}{
		{"defaults", nil, 512, layout.Small().USR},
		{"4096 with bigger USR", []string{"--sector-size", "4096", "--usr-size", "4MiB"}, 4096, 4 << 20},
		{"with a USR-A image", []string{"--usr-a-image", usr}, 512, layout.Small().USR},
		{"production, sparse", []string{"--production"}, 512, layout.GiB},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "disk.img")
			var out bytes.Buffer
			if err := run(context.Background(), append([]string{"-o", img}, tc.args...), &out, &out); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, _ := f.Stat()
			tab, err := gpt.Read(context.Background(), f, fi.Size(), tc.ss)
			if err != nil || !tab.Clean() {
				t.Fatalf("read: %v", err)
			}
			a, _ := tab.Entry(layout.NumUSRA)
			if got := int64(a.LastLBA-a.FirstLBA+1) * int64(tc.ss); got != tc.usr {
				t.Fatalf("USR-A is %d bytes, want %d", got, tc.usr)
			}
			if strings.Contains(tc.name, "image") {
				b := make([]byte, 4096)
				if _, err := f.ReadAt(b, int64(a.FirstLBA)*int64(tc.ss)); err != nil || !bytes.Equal(b, bytes.Repeat([]byte{0xAB}, 4096)) {
					t.Fatal("USR-A does not hold the image")
				}
			}
			if tc.ss == 512 {
				gpttest.SgdiskVerify(t, img)
			}
		})
	}
}

func TestMkdiskUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"-o"}, {"-o", "x", "extra"}, {"-o", "x", "--usr-size", "2TB"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, &out, &out); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-o", img, "--sector-size", "1024"}, &out, &out); err == nil || !strings.Contains(err.Error(), "sector size") {
		t.Errorf("sector size 1024: %v", err)
	}
	if _, err := os.Stat(img); !errors.Is(err, os.ErrNotExist) {
		t.Error("a failed mkdisk left an image behind")
	}
}

package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestPipe sends a request through fwdpipe to a loopback server that answers once the request
// is complete (it reads to EOF, which needs the half-close), as a guest connection would.
func TestPipe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, _ := io.ReadAll(c)
		io.WriteString(c, "echo:"+string(req))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{ln.Addr().String()}, strings.NewReader("GET / HTTP/1.0\r\n\r\n"), &out, &errOut); err != nil {
		t.Fatalf("run: %v (%s)", err, errOut.String())
	}
	if got, want := out.String(), "echo:GET / HTTP/1.0\r\n\r\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestPipeErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{name: "no address", args: nil},
		{name: "two addresses", args: []string{"127.0.0.1:1", "127.0.0.1:2"}},
		{name: "nobody listening", args: []string{"-dial-timeout", "2s", closed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := run(context.Background(), tc.args, strings.NewReader(""), io.Discard, io.Discard); err == nil {
				t.Fatal("run succeeded")
			}
		})
	}
}

// Command fwdpipe joins its stdin and stdout to a TCP connection. QEMU runs it for each guest
// connection of a "guestfwd=...-cmd:fwdpipe HOST:PORT" rule, so a guest on the restricted user
// network reaches one service on the host's loopback and nothing else.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fwdpipe:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fwdpipe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("dial-timeout", 5*time.Second, "how long to try to connect")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: fwdpipe [-dial-timeout D] HOST:PORT")
	}
	d := net.Dialer{Timeout: *timeout}
	conn, err := d.DialContext(ctx, "tcp", fs.Arg(0))
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() {
		_, _ = io.Copy(conn, stdin)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite() // the guest finished sending; let the server see EOF
		}
	}()
	// The connection ends when the host side closes; what the guest still sends then is moot.
	_, err = io.Copy(stdout, conn)
	return err
}

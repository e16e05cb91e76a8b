package main

import (
	"context"
	"errors"
	"io"
)

// runDaemon is replaced by the update-engine work.
func runDaemon(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("daemon: not built yet")
}

package main

import (
	"context"
	"errors"
	"io"
)

// runTUF is replaced by the work that owns it.
func runTUF(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("tuf: not built yet")
}

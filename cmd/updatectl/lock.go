package main

import (
	"context"
	"errors"
	"io"
)

// runLock is replaced by the rebootlock work.
func runLock(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("lock: not built yet")
}

package main

import (
	"context"
	"errors"
	"io"
)

// runKeys is replaced by the work that owns it.
func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("keys: not built yet")
}

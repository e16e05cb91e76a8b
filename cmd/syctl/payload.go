package main

import (
	"context"
	"errors"
	"io"
)

// runPayload is replaced by the work that owns it.
func runPayload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("payload: not built yet")
}

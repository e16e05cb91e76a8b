package main

import (
	"context"
	"errors"
	"io"
)

// runAdmin is replaced by the work that owns it.
func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("admin: not built yet")
}

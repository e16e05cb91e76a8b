package main

import (
	"context"
	"errors"
	"io"
)

// runGPT is replaced by the partitions work.
func runGPT(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("gpt: not built yet")
}

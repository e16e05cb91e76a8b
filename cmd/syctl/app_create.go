package main

import (
	"context"
	"fmt"
	"io"
)

// runAppCreate runs `syctl app create`.
func runAppCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := newAdminFlagSet("app create", stderr)
	var id, name string
	fs.StringVar(&id, "id", "", "application ID (a GUID, braces optional)")
	fs.StringVar(&name, "name", "", "application name")
	if err := parseNone(fs, args, stdout); err != nil {
		return err
	}
	if err := need(map[string]string{"id": id, "name": name}); err != nil {
		return err
	}
	ctx, cancel, c, err := af.start(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	a, err := c.CreateApp(ctx, id, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created application %s (%s)\n", a.ID, a.Name)
	return nil
}

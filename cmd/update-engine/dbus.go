package main

import (
	"context"
	"log/slog"

	"github.com/switchyard-os/switchyard/update-engine/dbusapi"
)

// serveDBus runs the com.coreos.update1 service on the bus at address (DBUS) until ctx
// ends. A missing bus, or one that refuses the name, is logged: the daemon goes on without
// D-Bus, as hosts without a system bus (containers, test rigs) need. settled is called once
// the name is owned, or once it is clear it will not be (it may be called twice).
func serveDBus(ctx context.Context, address string, eng dbusapi.Engine, log *slog.Logger, settled func()) error {
	defer settled()
	conn, err := dbusapi.Connect(ctx, address)
	if err != nil {
		log.Warn("no D-Bus service: the bus is unreachable", "bus", address, "err", err)
		return nil
	}
	defer conn.Close()
	if err := dbusapi.Serve(ctx, conn, eng, log, settled); err != nil {
		log.Warn("no D-Bus service", "bus", address, "err", err)
	}
	return nil
}

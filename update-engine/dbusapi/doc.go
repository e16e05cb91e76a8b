// Package dbusapi serves update-engine on D-Bus as Flatcar's update_engine does, so that
// locksmithd, FLUO's update-agent and update_engine_client work unchanged.
//
// # Parties
//
// The daemon (cmd/update-engine, the only importer) connects to a bus (Connect) and runs
// Serve with its engine, seen through the small Engine interface declared here. Clients are
// whoever the bus policy lets through: packaging/dbus/com.coreos.update1.conf, Flatcar's
// policy (root owns the name and may call everything; user core may call the three
// methods; everybody else is refused, introspection included). The JSON control socket
// (package control) stays the richer API; this one is the compatible one.
//
// # Wire
//
//	bus name   com.coreos.update1
//	object     /com/coreos/update1
//	interface  com.coreos.update1.Manager
//	  AttemptUpdate()                 an on-demand (interactive) check; while an update
//	                                  runs it does nothing and succeeds, as Flatcar's; in
//	                                  UPDATED_NEED_REBOOT it pings (Flatcar's skips)
//	  ResetStatus()                   engine.ResetStatus: a failure, or an update waiting
//	                                  for its reboot (the flip undone), back to IDLE; fails
//	                                  with org.freedesktop.DBus.Error.Failed while a check
//	                                  or update runs
//	  GetStatus() -> (x last_checked_time, d progress, s current_operation,
//	                  s new_version, x new_size)
//	  signal StatusUpdate (the same five fields)
//	org.freedesktop.DBus.Introspectable on the object (and, from godbus, on its parents)
//
// The five fields come from engine.Snapshot: last_checked_time is LastChecked in Unix
// seconds (0 before the first check), progress is Progress (0..1), current_operation is the
// status string, new_version is NewVersion or Flatcar's "0.0.0.0" when there is none,
// new_size is NewSize in bytes. The engine's statuses are Flatcar's strings, so the mapping
// is the identity: UPDATE_STATUS_IDLE, _CHECKING_FOR_UPDATE, _UPDATE_AVAILABLE,
// _DOWNLOADING, _VERIFYING (entered by this engine; Flatcar defines it but skips it),
// _FINALIZING, _UPDATED_NEED_REBOOT, _REPORTING_ERROR_EVENT.
//
// # Signals
//
// Serve follows the engine's change sequence (Engine.Wait) and emits StatusUpdate whenever
// the five fields differ from the last emitted ones; changes the fields do not show (the
// next check time) emit nothing. Wait hands out the newest snapshot, so a status the engine
// leaves again before Serve looks (REPORTING_ERROR_EVENT on its way back to IDLE) may be
// skipped; a resting status (IDLE, UPDATED_NEED_REBOOT) is always emitted. Clients that
// must not miss UPDATED_NEED_REBOOT do what locksmithd does: subscribe, then GetStatus.
//
// # Lifetime
//
// Serve exports the object before it asks for the name, so nobody finds the name without
// the object; on return it has released the name, unexported the object and waited for the
// method calls in flight. The connection belongs to the caller, which closes it.
package dbusapi

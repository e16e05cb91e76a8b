// Package fleetlock speaks the FleetLock protocol (as used by Zincati): a server-side
// http.Handler backed by the rebootlock semaphore, for hosts that hold no etcd
// credentials, and the host-side Client, which is the lock of the fleetlock strategy.
//
// # Protocol
//
// Two operations, each a POST with a JSON body and the header `fleet-lock-protocol: true`
// (a guard against accidental redirects), relative to a base URL:
//
//	POST <base>/v1/pre-reboot    RecursiveLock: take a slot (success if already held)
//	POST <base>/v1/steady-state  UnlockIfHeld: release a slot (success if not held)
//
//	{"client_params": {"id": "<non-empty text, case-sensitive>", "group": "<^[a-zA-Z0-9.-]+$>"}}
//
// 200 means success, anything else failure. Failures carry a JSON body
// {"kind": "<bounded machine-readable reason>", "value": "<text for people>"}.
//
// # This server's replies
//
//	200                          done
//	400 missing_protocol_header  no `fleet-lock-protocol: true`
//	400 invalid_body             not JSON, or no client_params
//	400 invalid_client_identity  empty id, above 256 bytes, or with '/' or control characters
//	400 invalid_group            group not matching ^[a-zA-Z0-9.-]+$
//	404 not_found                another path
//	405 method_not_allowed       not POST
//	409 failed_lock_semaphore_full  every slot of the group is held
//	413 body_too_large           body above 64 KiB
//	500 failed_lock_config       the group's config in etcd is unreadable
//	503 failed_lock / failed_unlock  etcd failed; the client retries
//
// Slots taken here are recorded with via "fleetlock" and have no liveness key (the server
// cannot see the host); they count as stale once their reboot deadline passes. The handler
// keeps no state of its own, so any number of servers can share one etcd.
package fleetlock

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
//	400 unknown_group            pre-reboot in an unconfigured group (ConfiguredGroupsOnly)
//	404 not_found                another path
//	405 method_not_allowed       not POST
//	409 failed_lock_semaphore_full  every slot of the group is held
//	413 body_too_large           body above 64 KiB
//	429 too_many_new_groups      this source brought too many new groups into use this hour
//	500 failed_lock_config       the group's config in etcd is unreadable
//	503 failed_lock / failed_unlock  etcd failed; the client retries
//
// Slots taken here are recorded with via "fleetlock" and have no liveness key (the server
// cannot see the host); they count as stale once their reboot deadline passes.
//
// # Groups and strangers
//
// FleetLock has no client authentication, so the server bounds what invented requests can
// do. A group is configured when its config key exists (`updatectl lock set-max`); that
// is the operator's list of groups. With Config.ConfiguredGroupsOnly (airlock's rule) a
// pre-reboot in any other group is refused. Otherwise an unconfigured group is served, as
// Zincati's "default" expects, but: a source address (IPv4 address or IPv6 /64) may bring
// at most Config.NewGroupsPerSource empty unconfigured groups into use per hour; a holder
// of an unconfigured group is on a lease of Config.HolderTTL, so etcd frees its slot if it
// never sends steady-state; and the in-memory group table forgets the least recently used
// group beyond rebootlock.MaxGroups rather than refusing one. None of these touch a
// configured group, whose holders keep their slot until they release it or an operator
// reclaims it. The only state kept between requests is that table and the per-source
// counters; the lock itself is in etcd, so any number of servers can share one etcd (each
// with its own counters).
package fleetlock

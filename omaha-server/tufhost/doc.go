// Package tufhost serves Switchyard's TUF repository from omaha-server and signs its two
// online roles, snapshot and timestamp.
//
// Parties: the release engineer signs root and targets offline (signing/tuf/repo, `syctl
// tuf`) and uploads them; the server (this package) checks every upload exactly as a
// client would, stores it, signs a new snapshot and timestamp, and keeps the timestamp
// fresh; hosts (signing/tuf/client) and any other TUF client read it over HTTP.
//
// Store: one directory (Config.Dir) with the files clients fetch, under the same names:
//
//	N.root.json       every root version since the first; never removed
//	N.targets.json    every targets version
//	N.snapshot.json   every snapshot version
//	timestamp.json    the current timestamp: the commit point
//
// A publish writes root(s), then targets, then the snapshot, then timestamp.json last, each
// durably (temp, fsync, rename, fsync dir). A crash before the timestamp leaves the
// previous state served; Open reads the state back from timestamp.json and the files it
// names. Old versions stay, so a client half-way through a refresh still finds what it
// was told to fetch.
//
// Served under /tuf/ (mount [Host.Handler] with http.StripPrefix("/tuf", ...)):
//
//	GET /N.root.json, /root.json (alias of the newest), /timestamp.json, /N.snapshot.json,
//	    /N.targets.json                              application/json
//	GET /targets/<dir>/<sha256>.<base>               application/octet-stream, Range
//
// A target is served only when the current targets metadata lists <dir>/<base> with that
// sha256; its bytes come from the server's payload store through [PayloadOpener]. Anything
// else is 404; methods other than GET and HEAD are 405.
//
// Timing: snapshot and timestamp are re-signed when less than half of their validity is
// left ([Host.Refresh], called on demand and every interval by [Host.Run]); every publish
// signs a new snapshot and timestamp. All expiries are whole seconds in UTC. The clock is
// Config.Now.
//
// Online keys: Config.Keys holds every snapshot and timestamp key the server has; for each
// role the host signs with those the current root lists for it, and refuses to start or to
// publish a root whose threshold they cannot meet. To rotate an online key, start the
// server with old and new keys, then publish the new root.
//
// Replicas: a Host keeps the served state in memory and is the only writer of its
// directory. Several omaha-server replicas need one signing Host (the others proxy /tuf/
// to it, or serve a read-only copy of its directory); two Hosts signing the same
// repository would hand out different timestamps under one version.
//
// tufhost imports signing/tuf and signing/tuf/repo of Switchyard's.
package tufhost

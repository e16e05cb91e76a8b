// Package tufhost serves Switchyard's TUF repository from omaha-server and signs its two
// online roles, snapshot and timestamp.
//
// Parties: the release engineer signs root and targets offline (signing/tuf/repo, `syctl
// tuf`) and uploads them; the server (this package) checks every upload exactly as a
// client would, stores it, signs a new snapshot and timestamp, and keeps the timestamp
// fresh; hosts (signing/tuf/client) and any other TUF client read it over HTTP.
//
// Storage: one of two, behind one small interface (storage.go).
//
// A directory (Config.Dir), for one server, with the files clients fetch under the same
// names:
//
//	N.root.json       every root version since the first; never removed
//	N.targets.json    every targets version
//	N.snapshot.json   every snapshot version
//	timestamp.json    the current timestamp: the commit point
//
// A publish writes root(s), then targets, then the snapshot, then timestamp.json last, each
// durably (temp, fsync, rename, fsync dir). A crash before the timestamp leaves the
// previous state served. Old versions stay, so a client half-way through a refresh still
// finds what it was told to fetch.
//
// Or the database every replica shares (Config.DB, store.TUF): each root, targets and
// snapshot version written once under (role, version), and the current timestamp in one
// row moved by compare-and-set, in the transaction that adds the files it names.
//
// Config.ImportDir copies a directory's committed repository into an empty database once
// (import.go), so that a server moving to replicas keeps the versions clients trust.
//
// Either way a Host serves from memory the current timestamp and what it names, and
// re-reads the storage (sync) at most once per Config.SyncInterval when a client asks for
// timestamp.json or root.json, before every write, and at every Run round; it swaps its
// whole state at once, so what it serves is always one committed state. A versioned file
// it does not hold is read from the storage, where every version is committed and fixed.
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
// Replicas (Config.DB): any number of Hosts on one database. Exactly one signs at a time,
// the holder of a lease in the database (holder, expiry by the database's clock, fence).
// Refresh, called by Run at least four times per lease, takes or renews the lease and
// re-signs when due; the others find it held (ErrNotLeader inside, no error out) and only
// follow. A Host killed without Release is replaced when its lease lapses. Publish and
// Resign work on any Host: they read the committed state, take the lease even from a live
// holder (the fence moves), and write conditionally on it. Every write is conditional on
// the fence and on the timestamp version read, so a Host that lost the lease, or raced
// another writer, writes nothing and gets ErrLeaseLost; Publish then reads again and
// re-checks the upload (up to three attempts). Versions never fork and never go back.
//
//	state      event                              next
//	follower   Refresh finds the lease free/lapsed leader (fence+1)
//	follower   Publish or Resign                  leader (steals: fence+1)
//	leader     Refresh renews in time             leader (same fence)
//	leader     another Host steals, or the lease  follower: its next write fails
//	           lapses and is taken                (ErrLeaseLost), its next renewal
//	                                              finds the lease held
//	leader     Release (clean shutdown)           follower; another leads at its next round
//
// A directory has one Host; it always leads.
//
// tufhost imports signing/tuf and signing/tuf/repo of Switchyard's, and omaha-server/store
// for the database's interface.
package tufhost

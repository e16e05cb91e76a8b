// Package client is the host side of Switchyard's TUF repository: it refreshes the
// repository's metadata with go-tuf's updater and answers which payloads the targets role
// pins, with their length, SHA-256 and custom fields.
//
// It never downloads a payload: go-tuf's DownloadTarget holds the whole file in memory. The
// update engine streams the payload itself, bounded by [Target.Length] and checked against
// [Target.SHA256].
//
// Files on the host:
//
//	TrustedRoot (e.g. /usr/share/switchyard/tuf/root.json)  installed with the OS image
//	CacheDir (e.g. /var/lib/switchyard/tuf)                 root.json, timestamp.json,
//	                                                        snapshot.json, targets.json
//
// Each refresh starts from the newer of the installed root and the cached root (the cached
// one was verified along the rotation chain starting at an installed one; an OS update may
// install a newer root), walks N+1.root.json, N+2.root.json, ... until a 404, then fetches
// timestamp, snapshot and targets, with go-tuf's trustedmetadata checking every step:
// signatures and thresholds, version rollback against the cached metadata, freeze
// (expiry at the reference time), and mix-and-match (targets and snapshot versions must
// match what snapshot and timestamp say). go-tuf's own cache writes are not durable, so
// its cache is disabled and this package writes the trusted metadata after a successful
// refresh with temp file, fsync, rename, fsync of the directory. go-tuf still reads the
// cached files, which is what makes rollback protection survive reboots.
//
// Rollback protection reaches only as far as the cache: with the cache wiped, the baseline
// is the installed root. The engine keeps its own floor (never a version or release counter
// below the running one) on top.
//
// Fetching is pluggable ([Fetcher]): HTTP from Config.MetadataURL by default, a directory
// ([DirFetcher]) or files held in memory ([Files]) for air-gapped installs from local media.
// The source changes nothing about the checks, and the cache is the same one: metadata on
// local media must not be older than what the host last verified online, and what it
// verifies from the media becomes the floor for the next online refresh.
//
// HTTP: every fetch uses the configured client (a default one with a timeout otherwise),
// the refresh's context, and go-tuf's size limits. The reference time for expiry is
// Config.Now, taken once per refresh.
//
// A Client is safe for concurrent use; refreshes are serialised.
//
// client imports only signing/tuf and the internal mechanisms (atomicfile, smallfile) of
// Switchyard's.
package client

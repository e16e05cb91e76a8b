// Package repo builds and checks the offline half of Switchyard's TUF repository: the root
// and targets roles, whose keys stay with the release engineer, and the checks the server
// runs on what the release engineer uploads.
//
// The parties: the release engineer runs `syctl keys` and `syctl tuf` against a working
// directory ([Repo]); the server (omaha-server/tufhost) receives roots and targets metadata
// from there, checks them with [VerifyRootUpdate], [VerifyTargets] and [FindPayload], and
// signs snapshot and timestamp itself.
//
// Working directory layout (`syctl tuf --repo DIR`), all files JSON as go-tuf writes them:
//
//	DIR/root/N.root.json   every root version, 1.root.json first; the highest is current
//	DIR/staged-root.json   the next root while it still lacks signatures (rotate-root,
//	                       sign-root); moved to DIR/root/ once both thresholds are met
//	DIR/targets.json       the last signed targets metadata: what `release publish` uploads
//	DIR/staged-targets.json the next targets metadata, unsigned; add-target and
//	                       remove-target edit it, sign-targets signs it into targets.json
//
// Invariants: version numbers only grow by one (root) or at least one (targets); every
// expiry is whole seconds in UTC; every target lists only sha256 and carries valid
// tuf.Custom fields; a root is only written to DIR/root/ after it verifies against its
// predecessor exactly as a client would check it (signed by the threshold of the old and of
// the new root keys, version +1); a targets file is only written after it verifies against
// the current root. Files are replaced with internal/atomicfile (temp, fsync, rename, fsync
// dir), so a failed command loses nothing, and read with internal/smallfile, bounded by the
// tuf.Max*Size constants (a larger file is ErrInvalid).
//
// repo imports only signing/tuf and the internal mechanisms (atomicfile, smallfile) of
// Switchyard's.
package repo

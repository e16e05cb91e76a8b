// Package trust answers the engine's question "does TUF vouch for this version on this
// board?" with signing/tuf/client: every Lookup refreshes the metadata (root rotation,
// timestamp, snapshot, targets, with go-tuf checking signatures, thresholds, expiry, rollback
// and mix-and-match) and then finds the one target whose custom fields name the version and
// board, and the source version for a delta payload (none for the full payload). Only metadata is fetched; the payload is streamed by the installer, bounded by the
// target's length and checked against its SHA-256.
package trust

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/switchyard-os/switchyard/signing/tuf/client"
	"github.com/switchyard-os/switchyard/update-engine/engine"
)

// Refresher is the part of *client.Client used here.
type Refresher interface {
	Refresh(ctx context.Context) (*client.Repository, error)
}

// TUF implements engine.Trust.
type TUF struct {
	Client Refresher
}

// Lookup refreshes the metadata and returns the target for version and board: the full
// payload's when source is empty, else the delta payload's whose custom source_version is
// source. A full payload and its deltas share version and board, so the source tells them
// apart; several names pinning one kind resolve to the first in sort order.
func (t TUF) Lookup(ctx context.Context, version, board, source string) (engine.Target, error) {
	repo, err := t.Client.Refresh(ctx)
	if err != nil {
		return engine.Target{}, fmt.Errorf("trust: TUF refresh: %w", err)
	}
	for _, tgt := range repo.Targets() { // sorted by name
		if tgt.CustomErr == nil && tgt.Custom.Board == board && tgt.Custom.Version == version && tgt.Custom.SourceVersion() == source {
			return Target(tgt)
		}
	}
	what := "full payload"
	if source != "" {
		what = "delta payload from " + source
	}
	return engine.Target{}, fmt.Errorf("trust: %w: board %q version %q %s", client.ErrNotFound, board, version, what)
}

// Target converts a target TUF pins to the engine's; its custom fields must be valid.
func Target(tgt client.Target) (engine.Target, error) {
	if tgt.CustomErr != nil {
		return engine.Target{}, fmt.Errorf("trust: target %s: %w", tgt.Name, tgt.CustomErr)
	}
	out := engine.Target{
		Name:          tgt.Name,
		Length:        tgt.Length,
		SHA256:        append([]byte(nil), tgt.SHA256[:]...),
		Version:       tgt.Custom.Version,
		Board:         tgt.Custom.Board,
		Release:       uint64(max(tgt.Custom.ReleaseCounter, 0)),
		PartitionSize: tgt.Custom.PartitionSize,
		SourceVersion: tgt.Custom.SourceVersion(),
	}
	if h := tgt.Custom.PartitionSHA256; h != "" {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 {
			return engine.Target{}, fmt.Errorf("trust: target %s: bad partition hash %q", tgt.Name, h)
		}
		out.PartitionSHA256 = b
	}
	return out, nil
}

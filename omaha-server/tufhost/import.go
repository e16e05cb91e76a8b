package tufhost

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// importDir copies the committed repository of a directory (Config.ImportDir) into an
// empty database, once, so that moving one server to several replicas keeps the versions
// clients trust: every root, the targets and snapshot versions up to the ones the current
// timestamp names (newer files are leftovers of a publish that never committed), and the
// timestamp. It is one commit under the lease, taken like a publish. When the database
// already holds the same repository (an earlier start, or another replica importing at the
// same time) it does nothing; a database holding another repository is an error.
func (h *Host) importDir(ctx context.Context, dir string) error {
	src := dirStorage(dir)
	var files []file
	var root *metadata.Metadata[metadata.RootType]
	for v := int64(1); ; v++ {
		data, err := src.get(ctx, tuf.RoleRoot, v)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return err
		}
		next, err := repo.ParseRoot(data)
		if err == nil {
			err = repo.VerifyRootUpdate(root, next)
		}
		if err != nil {
			return fmt.Errorf("tufhost: importing %s: root %d: %w", dir, v, err)
		}
		root = next
		files = append(files, file{tuf.RoleRoot, v, data})
	}
	if root == nil {
		return nil // nothing to import
	}
	have, err := h.st.get(ctx, tuf.RoleRoot, 1)
	switch {
	case err == nil && string(have) == string(files[0].data):
		return nil // imported before, or the same repository started here
	case err == nil:
		return fmt.Errorf("tufhost: importing %s: the database holds another TUF repository (a different root 1)", dir)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	tsVersion, tsData, err := src.current(ctx)
	if err != nil {
		return err
	}
	req := commitReq{files: files}
	if tsVersion > 0 {
		l, err := h.loadTimestampFrom(ctx, src, tsData)
		if err != nil {
			return fmt.Errorf("tufhost: importing %s: %w", dir, err)
		}
		for _, r := range []struct {
			role string
			last int64
		}{{tuf.RoleTargets, l.targets.Signed.Version}, {tuf.RoleSnapshot, l.snap.Signed.Version}} {
			for v := int64(1); v <= r.last; v++ {
				data, err := src.get(ctx, r.role, v)
				if errors.Is(err, fs.ErrNotExist) {
					continue // an older version removed by hand: clients never need it again
				}
				if err != nil {
					return err
				}
				req.files = append(req.files, file{r.role, v, data})
			}
		}
		fence, err := h.st.lead(ctx, true)
		if err != nil {
			return err
		}
		req.fence, req.ts = fence, &file{tuf.RoleTimestamp, tsVersion, tsData}
	}
	if err := h.st.commit(ctx, req); err != nil {
		if have, gerr := h.st.get(ctx, tuf.RoleRoot, 1); gerr == nil && string(have) == string(files[0].data) {
			return nil // another replica imported it meanwhile
		}
		return fmt.Errorf("tufhost: importing %s: %w", dir, err)
	}
	h.log.Info("tuf repository imported from a directory into the database", "dir", dir,
		"root_version", root.Signed.Version, "timestamp_version", tsVersion)
	return nil
}

package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// A check-in of a known host rewrites the indexed columns only when they changed. A
// column in an UPDATE's SET list has its indexes rewritten even when the value is the
// same, and on SQLite each index page dirtied is a WAL frame on the single writer's path:
// a host's IP, version, alias and group change rarely, its status every few check-ins,
// and it checks in every few minutes. The other columns are always set.

const indexedColumnCount = 5

// indexedColumns are the instance columns under an index (besides the key), in the order
// of their bits in an update's mask; updates holds one prepared UPDATE per mask.
func indexedColumns() [indexedColumnCount]string {
	return [...]string{"group_name", "status", "version", "ip", "alias"}
}

// prepareUpdates prepares the UPDATE of every set of indexed columns (at Open: a
// statement prepared later would wait for the writer's only connection, which the
// check-in holds).
func (db *DB) prepareUpdates(ctx context.Context) error {
	cols := indexedColumns()
	for mask := range db.updates {
		set := []string{`boot_id = $3, aleph_version = $4, oem = $5, oem_version = $6, board = $7, track = $8,
			last_check = $9, status_at = $10, update_version = $11, last_error_code = $12, last_history_id = $13,
			last_event_id = $14, rev = rev + 1`}
		for i, c := range cols {
			if mask&(1<<i) != 0 {
				set = append(set, fmt.Sprintf("%s = $%d", c, 14+len(set)))
			}
		}
		s, err := db.w.PrepareContext(ctx, `UPDATE instances SET `+strings.Join(set, ", ")+` WHERE app_id = $1 AND machine_id = $2`)
		if err != nil {
			return err
		}
		db.updates[mask] = s
	}
	return nil
}

// updateInstance rewrites the row of n (with heads), an instance that was cur: the
// indexed columns that changed and every other one.
func (db *DB) updateInstance(ctx context.Context, tx *sql.Tx, cur, n *store.Instance, heads chainHeads) error {
	args := []any{n.AppID, n.MachineID, n.BootID, n.AlephVersion, n.OEM, n.OEMVersion, n.Board, n.Track,
		ms(n.LastCheck), ms(n.StatusAt), n.UpdateVersion, n.LastErrorCode, heads.history, heads.event}
	var mask int
	for i, c := range [...]struct{ old, new any }{{cur.Group, n.Group}, {string(cur.Status), string(n.Status)},
		{cur.Version, n.Version}, {cur.IP, n.IP}, {cur.Alias, n.Alias}} {
		if c.new != c.old {
			mask |= 1 << i
			args = append(args, c.new)
		}
	}
	_, err := tx.StmtContext(ctx, db.updates[mask]).ExecContext(ctx, args...)
	return err
}

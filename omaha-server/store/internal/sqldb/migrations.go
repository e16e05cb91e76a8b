package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// migrations are the schema, in order; migration N is migrations[N-1]. They are written
// once for both databases (the instances key is (machine_id, app_id) so that one index
// serves both a check-in and `instance show`; every extra index is written by every
// check-in): {{ID}} is the dialect's auto-increment primary key and {{BLOB}}
// its byte-string type. Times are BIGINT milliseconds since the Unix epoch in both, so
// the same queries read them. Never edit an applied migration: append a new one.
var migrations = []string{
	// 1: the model.
	`CREATE TABLE apps (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL,
		created_at BIGINT NOT NULL
	);
	CREATE TABLE releases (
		id {{ID}},
		app_id TEXT NOT NULL REFERENCES apps(id),
		version TEXT NOT NULL,
		board TEXT NOT NULL,
		file_name TEXT NOT NULL,
		size BIGINT NOT NULL,
		sha256 TEXT NOT NULL,
		sha1 TEXT NOT NULL DEFAULT '',
		hosted BOOLEAN NOT NULL,
		url TEXT NOT NULL DEFAULT '',
		targets_metadata {{BLOB}},
		created_at BIGINT NOT NULL,
		UNIQUE (app_id, version, board)
	);
	CREATE TABLE channels (
		id {{ID}},
		app_id TEXT NOT NULL REFERENCES apps(id),
		name TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		UNIQUE (app_id, name)
	);
	CREATE TABLE channel_releases (
		channel_id BIGINT NOT NULL REFERENCES channels(id),
		board TEXT NOT NULL,
		release_id BIGINT NOT NULL REFERENCES releases(id),
		updated_at BIGINT NOT NULL,
		PRIMARY KEY (channel_id, board)
	);
	CREATE TABLE app_groups (
		id {{ID}},
		app_id TEXT NOT NULL REFERENCES apps(id),
		name TEXT NOT NULL,
		track TEXT NOT NULL,
		channel_id BIGINT REFERENCES channels(id),
		updates_enabled BOOLEAN NOT NULL,
		created_at BIGINT NOT NULL,
		updated_at BIGINT NOT NULL,
		UNIQUE (app_id, name),
		UNIQUE (app_id, track)
	);
	CREATE TABLE instances (
		app_id TEXT NOT NULL,
		machine_id TEXT NOT NULL,
		boot_id TEXT NOT NULL,
		alias TEXT NOT NULL,
		version TEXT NOT NULL,
		aleph_version TEXT NOT NULL,
		oem TEXT NOT NULL,
		oem_version TEXT NOT NULL,
		board TEXT NOT NULL,
		track TEXT NOT NULL,
		group_name TEXT NOT NULL,
		ip TEXT NOT NULL,
		first_check BIGINT NOT NULL,
		last_check BIGINT NOT NULL,
		status TEXT NOT NULL,
		status_at BIGINT NOT NULL,
		update_version TEXT NOT NULL,
		last_error_code BIGINT NOT NULL,
		PRIMARY KEY (machine_id, app_id)
	);
	CREATE INDEX instances_group_status ON instances (app_id, group_name, status);
	CREATE INDEX instances_version ON instances (app_id, version);
	CREATE TABLE instance_status_history (
		id {{ID}},
		app_id TEXT NOT NULL,
		machine_id TEXT NOT NULL,
		status TEXT NOT NULL,
		version TEXT NOT NULL,
		error_code BIGINT NOT NULL,
		created_at BIGINT NOT NULL
	);
	CREATE INDEX instance_status_history_instance ON instance_status_history (machine_id, app_id, id);
	CREATE TABLE events (
		id {{ID}},
		app_id TEXT NOT NULL,
		machine_id TEXT NOT NULL,
		type INTEGER NOT NULL,
		result INTEGER NOT NULL,
		error_code BIGINT NOT NULL,
		previous_version TEXT NOT NULL,
		version TEXT NOT NULL,
		created_at BIGINT NOT NULL
	);
	CREATE INDEX events_instance ON events (app_id, machine_id, id);
	CREATE TABLE tokens (
		id {{ID}},
		hash TEXT NOT NULL UNIQUE,
		role TEXT NOT NULL,
		description TEXT NOT NULL,
		created_at BIGINT NOT NULL
	);
	CREATE TABLE catalog_generation (
		id INTEGER PRIMARY KEY,
		generation BIGINT NOT NULL
	);
	INSERT INTO catalog_generation (id, generation) VALUES (1, 1);`,
	// 2: a revision token per instance row, for writers that check-and-set a row instead of
	// locking it (the PostgreSQL check-in path).
	`ALTER TABLE instances ADD COLUMN rev BIGINT NOT NULL DEFAULT 0`,
	// 3: rollout control. The policy is JSON (package policy's format) on the group row,
	// with the rollout state and a version for check-and-set edits; one rollout_attempts row
	// per grant carries the counters; version_samples is the version distribution over
	// time. The status-count index covers the dashboard's GROUP BY; ip and alias serve
	// instance search (alias only where set); events_created serves retention.
	`ALTER TABLE app_groups ADD COLUMN policy TEXT NOT NULL DEFAULT '{}';
	ALTER TABLE app_groups ADD COLUMN paused BOOLEAN NOT NULL DEFAULT FALSE;
	ALTER TABLE app_groups ADD COLUMN halt_reason TEXT NOT NULL DEFAULT '';
	ALTER TABLE app_groups ADD COLUMN halted_at BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE app_groups ADD COLUMN resumed_at BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE app_groups ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
	CREATE TABLE rollout_attempts (
		id {{ID}},
		group_id BIGINT NOT NULL REFERENCES app_groups(id),
		app_id TEXT NOT NULL,
		machine_id TEXT NOT NULL,
		version TEXT NOT NULL,
		outcome TEXT NOT NULL,
		granted_at BIGINT NOT NULL,
		ended_at BIGINT NOT NULL
	);
	CREATE INDEX rollout_attempts_granted ON rollout_attempts (group_id, granted_at);
	CREATE INDEX rollout_attempts_outcome ON rollout_attempts (group_id, outcome, granted_at);
	CREATE INDEX rollout_attempts_machine ON rollout_attempts (group_id, machine_id, id);
	CREATE INDEX rollout_attempts_ended ON rollout_attempts (group_id, version, ended_at);
	CREATE TABLE version_samples (
		app_id TEXT NOT NULL,
		at BIGINT NOT NULL,
		version TEXT NOT NULL,
		count BIGINT NOT NULL,
		PRIMARY KEY (app_id, at, version)
	);
	DROP INDEX instances_group_status;
	CREATE INDEX instances_group_status_version ON instances (app_id, group_name, status, version);
	CREATE INDEX instances_ip ON instances (ip);
	CREATE INDEX instances_alias ON instances (alias) WHERE alias <> '';
	CREATE INDEX events_created ON events (created_at)`,
	// 4: chain heads and links for dialects with ChainedLogs (see chainedLogs); on the
	// others the columns stay zero and the instance indexes serve.
	`ALTER TABLE instances ADD COLUMN last_history_id BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE instances ADD COLUMN last_event_id BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE instance_status_history ADD COLUMN prev_id BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE events ADD COLUMN prev_id BIGINT NOT NULL DEFAULT 0`,
	// 5: host identity. One key per machine id (package hostauth): pinned on a host's first
	// signed contact or enrolled by an operator. The primary key serves the lookup every
	// signed check-in makes and the paged listing.
	`CREATE TABLE host_keys (
		machine_id TEXT PRIMARY KEY,
		public_key TEXT NOT NULL,
		enrolled BOOLEAN NOT NULL,
		created_at BIGINT NOT NULL,
		updated_at BIGINT NOT NULL
	)`,
	// 6: named tokens with an expiry, their last use and their revocation (0: none). A
	// revoked token keeps its row so that what it did stays attributable. Tokens made
	// before get their description as a name.
	`ALTER TABLE tokens ADD COLUMN name TEXT NOT NULL DEFAULT '';
	ALTER TABLE tokens ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE tokens ADD COLUMN last_used_at BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE tokens ADD COLUMN revoked_at BIGINT NOT NULL DEFAULT 0;
	UPDATE tokens SET name = SUBSTR(description, 1, 64)`,
	// 7: the activity log (store/activity.go): one row per admin write or automatic halt,
	// written in the change's transaction. Listed newest first by id; activity_at serves
	// retention and time filters. before_json and after_json hold JSON objects ('' for
	// none).
	`CREATE TABLE activity (
		id {{ID}},
		at BIGINT NOT NULL,
		actor TEXT NOT NULL,
		actor_token_id BIGINT NOT NULL,
		action TEXT NOT NULL,
		app_id TEXT NOT NULL,
		subject TEXT NOT NULL,
		before_json TEXT NOT NULL,
		after_json TEXT NOT NULL,
		reason TEXT NOT NULL
	);
	CREATE INDEX activity_at ON activity (at)`,
	// 8: instance_counts, how many instances of an application are in each (group,
	// version, status), kept exact by every write of an instance row in the same
	// transaction (see counts.go), in shards whose sum is the count; filled here from the
	// instances there are, into shard 0. The channel is not part of the key: an instance
	// records no channel, it follows its group's, so readers take it from the group row.
	`CREATE TABLE instance_counts (
		app_id TEXT NOT NULL,
		group_name TEXT NOT NULL,
		version TEXT NOT NULL,
		status TEXT NOT NULL,
		shard INTEGER NOT NULL,
		count BIGINT NOT NULL,
		PRIMARY KEY (app_id, group_name, version, status, shard)
	);
	INSERT INTO instance_counts (app_id, group_name, version, status, shard, count)
		SELECT app_id, group_name, version, status, 0, COUNT(*) FROM instances GROUP BY app_id, group_name, version, status`,
	// 9: the version distribution of each group over time, for the dashboard's chart
	// narrowed to one group (the application-wide version_samples stay as they are).
	`CREATE TABLE group_version_samples (
		app_id TEXT NOT NULL,
		group_name TEXT NOT NULL,
		at BIGINT NOT NULL,
		version TEXT NOT NULL,
		count BIGINT NOT NULL,
		PRIMARY KEY (app_id, group_name, at, version)
	);
	CREATE INDEX group_version_samples_at ON group_version_samples (at)`,
	// 10: the TUF repository every replica serves (store.TUF): each root, targets and
	// snapshot version once, the current timestamp (a single row moved by
	// compare-and-set) and the signing lease (a single row: holder, expiry in the
	// database's milliseconds, fence).
	`CREATE TABLE tuf_metadata (
		role TEXT NOT NULL,
		version BIGINT NOT NULL,
		data {{BLOB}} NOT NULL,
		created_at BIGINT NOT NULL,
		PRIMARY KEY (role, version)
	);
	CREATE TABLE tuf_current (
		id INTEGER PRIMARY KEY,
		version BIGINT NOT NULL,
		data {{BLOB}},
		updated_at BIGINT NOT NULL
	);
	INSERT INTO tuf_current (id, version, data, updated_at) VALUES (1, 0, NULL, 0);
	CREATE TABLE tuf_lease (
		id INTEGER PRIMARY KEY,
		holder TEXT NOT NULL,
		fence BIGINT NOT NULL,
		expires_at BIGINT NOT NULL
	);
	INSERT INTO tuf_lease (id, holder, fence, expires_at) VALUES (1, '', 0, 0)`,
	// 11: delta payloads. A release has at most one delta per source version; its file
	// lives beside the release's full payload, so the name is unique within the release
	// too. Rows go with their release.
	`CREATE TABLE delta_payloads (
		id {{ID}},
		release_id BIGINT NOT NULL REFERENCES releases(id),
		source_version TEXT NOT NULL,
		file_name TEXT NOT NULL,
		size BIGINT NOT NULL,
		sha256 TEXT NOT NULL,
		sha1 TEXT NOT NULL DEFAULT '',
		hosted BOOLEAN NOT NULL,
		url TEXT NOT NULL DEFAULT '',
		targets_metadata {{BLOB}},
		created_at BIGINT NOT NULL,
		UNIQUE (release_id, source_version),
		UNIQUE (release_id, file_name)
	)`,
	// 12: rollout counter rows (rollout.go's counters): per group, the attempts in flight
	// and the width of its grant buckets (-1: to be rebuilt from rollout_attempts by the
	// next counted check-in, which knows the policy's period); per group and bucket, the
	// grants made in it. Filled here with the attempts in flight; the buckets follow at
	// each group's next counted check-in.
	`CREATE TABLE rollout_counters (
		group_id BIGINT PRIMARY KEY REFERENCES app_groups(id),
		in_flight BIGINT NOT NULL,
		bucket_ms BIGINT NOT NULL
	);
	CREATE TABLE rollout_grants (
		group_id BIGINT NOT NULL REFERENCES app_groups(id),
		bucket BIGINT NOT NULL,
		grants BIGINT NOT NULL,
		PRIMARY KEY (group_id, bucket)
	);
	INSERT INTO rollout_counters (group_id, in_flight, bucket_ms)
		SELECT g.id, (SELECT COUNT(*) FROM rollout_attempts a WHERE a.group_id = g.id AND a.outcome = 'pending'), -1 FROM app_groups g`,
}

// chainedLogs is the rest of migration 4 for a dialect with ChainedLogs: an instance's
// status history and events become chains instead of index ranges. Each row points at the
// instance's previous one (prev_id) and the instance row at its newest (last_history_id,
// last_event_id). An index keyed by instance puts every insert on a random page, a WAL
// frame on the single writer's path per row; a chain costs an append to the table and two
// columns of the instance row, which the check-in writes anyway. Reading an instance's
// newest N rows walks N primary-key lookups. The links of existing rows are filled in
// from the indexes before they go.
const (
	chainedLogsMigration = 4
	chainedLogs          = `UPDATE instance_status_history SET prev_id = COALESCE((SELECT MAX(h.id) FROM instance_status_history h
		WHERE h.machine_id = instance_status_history.machine_id AND h.app_id = instance_status_history.app_id
		AND h.id < instance_status_history.id), 0);
	UPDATE events SET prev_id = COALESCE((SELECT MAX(e.id) FROM events e
		WHERE e.app_id = events.app_id AND e.machine_id = events.machine_id AND e.id < events.id), 0);
	UPDATE instances SET
		last_history_id = COALESCE((SELECT MAX(h.id) FROM instance_status_history h
			WHERE h.machine_id = instances.machine_id AND h.app_id = instances.app_id), 0),
		last_event_id = COALESCE((SELECT MAX(e.id) FROM events e
			WHERE e.app_id = instances.app_id AND e.machine_id = instances.machine_id), 0);
	DROP INDEX instance_status_history_instance;
	DROP INDEX events_instance`
)

// migrate applies the migrations not yet recorded in schema_migrations, each in its own
// transaction, under the dialect's migration lock.
func (db *DB) migrate(ctx context.Context) error {
	return db.migrateTo(ctx, len(migrations))
}

// MigrateTo applies the migrations up to version to the database w, as Open does with all
// of them: for tests that start from a database an older release left.
func MigrateTo(ctx context.Context, w *sql.DB, d Dialect, version int) error {
	db := &DB{w: w, r: w, d: d, now: time.Now}
	return db.migrateTo(ctx, version)
}

func (db *DB) migrateTo(ctx context.Context, last int) error {
	if _, err := db.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("%s: creating schema_migrations: %w", db.d.Name, err)
	}
	for i, m := range migrations[:last] {
		version := i + 1
		if m == "" {
			continue // a number reserved for a migration not merged yet
		}
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			if db.d.MigrationLock != "" {
				if _, err := tx.ExecContext(ctx, db.d.MigrationLock); err != nil {
					return err
				}
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if version == chainedLogsMigration && db.d.ChainedLogs {
				m += ";\n" + chainedLogs
			}
			ddl := strings.NewReplacer("{{ID}}", db.d.IDColumn, "{{BLOB}}", db.d.BlobType).Replace(m)
			for _, stmt := range strings.Split(ddl, ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, version, ms(db.now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: migration %d: %w", db.d.Name, version, err)
		}
	}
	return nil
}

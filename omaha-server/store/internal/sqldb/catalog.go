package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// CreateChannel implements store.Store.
func (db *DB) CreateChannel(ctx context.Context, c store.Channel) (store.Channel, error) {
	c.AppID = store.NormalizeAppID(c.AppID)
	if strings.TrimSpace(c.Name) == "" {
		return store.Channel{}, db.errorf("creating channel: a name is required: %w", store.ErrInvalid)
	}
	c.CreatedAt = fromMS(ms(db.now()))
	c.Releases = map[string]store.Release{}
	err := db.recordTx(ctx, func(tx *sql.Tx, rec *recorder) error {
		if err := requireApp(ctx, tx, c.AppID); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO channels (app_id, name, created_at) VALUES ($1, $2, $3) RETURNING id`,
			c.AppID, c.Name, ms(c.CreatedAt)).Scan(&c.ID)
		if err != nil {
			return err
		}
		if err := rec.add(ctx, tx, store.Activity{Action: store.ActionChannelCreate, AppID: c.AppID, Subject: "channel/" + c.Name,
			After: json.RawMessage(`{}`)}); err != nil {
			return err
		}
		return bumpGeneration(ctx, tx)
	})
	return c, db.wrap(fmt.Sprintf("creating channel %q", c.Name), err)
}

// SetChannelRelease implements store.Store.
func (db *DB) SetChannelRelease(ctx context.Context, appID, channel, board, version string) (store.Channel, error) {
	appID = store.NormalizeAppID(appID)
	var c store.Channel
	err := db.recordTx(ctx, func(tx *sql.Tx, rec *recorder) error {
		var chID, relID int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM channels WHERE app_id = $1 AND name = $2`, appID, channel).Scan(&chID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("channel %q: %w", channel, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `SELECT id FROM releases WHERE app_id = $1 AND version = $2 AND board = $3`, appID, version, board).Scan(&relID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("release %s for board %s: %w", version, board, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		before, err := listChannels(ctx, tx, appID, channel)
		if err != nil {
			return err
		}
		if err := db.setChannelRelease(ctx, tx, chID, board, relID); err != nil {
			return err
		}
		if err := bumpGeneration(ctx, tx); err != nil {
			return err
		}
		chans, err := listChannels(ctx, tx, appID, channel)
		if err != nil {
			return err
		}
		c = chans[0]
		b, a, err := changes(channelVersions(before[0]), channelVersions(c))
		if err != nil {
			return err
		}
		return rec.add(ctx, tx, store.Activity{Action: store.ActionChannelSet, AppID: appID, Subject: "channel/" + channel, Before: b, After: a})
	})
	return c, db.wrap(fmt.Sprintf("setting channel %q", channel), err)
}

// GetChannel implements store.Store.
func (db *DB) GetChannel(ctx context.Context, appID, name string) (store.Channel, error) {
	var c store.Channel
	err := db.inReadTx(ctx, func(tx *sql.Tx) error {
		chans, err := listChannels(ctx, tx, store.NormalizeAppID(appID), name)
		if err != nil {
			return err
		}
		if len(chans) == 0 {
			return fmt.Errorf("channel %q: %w", name, store.ErrNotFound)
		}
		c = chans[0]
		return nil
	})
	return c, db.wrap("reading channel", err)
}

// ListChannels implements store.Store.
func (db *DB) ListChannels(ctx context.Context, appID string) ([]store.Channel, error) {
	appID = store.NormalizeAppID(appID)
	var out []store.Channel
	err := db.inReadTx(ctx, func(tx *sql.Tx) error {
		if err := requireApp(ctx, tx, appID); err != nil {
			return err
		}
		var err error
		out, err = listChannels(ctx, tx, appID, "")
		return err
	})
	return out, db.wrap("listing channels", err)
}

// listChannels reads the channels of appID (all applications when empty), only the one
// named name when name is set, with their releases.
func listChannels(ctx context.Context, tx *sql.Tx, appID, name string) ([]store.Channel, error) {
	q := `SELECT c.id, c.app_id, c.name, c.created_at, cr.board, ` + releaseColumnsOf("r") + `
		FROM channels c
		LEFT JOIN channel_releases cr ON cr.channel_id = c.id
		LEFT JOIN releases r ON r.id = cr.release_id
		WHERE ($1 = '' OR c.app_id = $1) AND ($2 = '' OR c.name = $2)
		ORDER BY c.app_id, c.name, cr.board`
	rows, err := tx.QueryContext(ctx, q, appID, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.Channel{}
	for rows.Next() {
		var c store.Channel
		var created int64
		var board sql.NullString
		var (
			rID, rSize, rCreated                                sql.NullInt64
			rApp, rVersion, rBoard, rFile, rSHA256, rSHA1, rURL sql.NullString
			rHosted                                             sql.NullBool
			rTargets                                            []byte
		)
		if err := rows.Scan(&c.ID, &c.AppID, &c.Name, &created, &board,
			&rID, &rApp, &rVersion, &rBoard, &rFile, &rSize, &rSHA256, &rSHA1, &rHosted, &rURL, &rTargets, &rCreated); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].ID != c.ID {
			c.CreatedAt = fromMS(created)
			c.Releases = map[string]store.Release{}
			out = append(out, c)
		}
		if board.Valid && rID.Valid {
			out[len(out)-1].Releases[board.String] = store.Release{
				ID: rID.Int64, AppID: rApp.String, Version: rVersion.String, Board: rBoard.String,
				FileName: rFile.String, Size: rSize.Int64, SHA256: rSHA256.String, SHA1: rSHA1.String,
				Hosted: rHosted.Bool, URL: rURL.String, HasTargetsMetadata: rTargets != nil,
				CreatedAt: fromMS(rCreated.Int64),
			}
		}
	}
	return out, rows.Err()
}

const groupSelect = `SELECT g.id, g.app_id, g.name, g.track, COALESCE(c.name, ''), g.updates_enabled, g.created_at, g.updated_at,
	g.policy, g.paused, g.halt_reason, g.halted_at, g.resumed_at, g.version
	FROM app_groups g LEFT JOIN channels c ON c.id = g.channel_id`

func scanGroup(s scanner) (store.Group, error) {
	var g store.Group
	var created, updated, halted, resumed int64
	var pol string
	if err := s.Scan(&g.ID, &g.AppID, &g.Name, &g.Track, &g.Channel, &g.UpdatesEnabled, &created, &updated,
		&pol, &g.Paused, &g.HaltReason, &halted, &resumed, &g.Version); err != nil {
		return g, err
	}
	g.CreatedAt, g.UpdatedAt, g.HaltedAt, g.ResumedAt = fromMS(created), fromMS(updated), fromMS(halted), fromMS(resumed)
	if err := json.Unmarshal([]byte(pol), &g.Policy); err != nil {
		return g, fmt.Errorf("group %q: stored policy: %w", g.Name, err)
	}
	return g, nil
}

// channelID resolves a channel name of appID; nil for the empty name.
func channelID(ctx context.Context, tx *sql.Tx, appID, name string) (any, error) {
	if name == "" {
		return nil, nil
	}
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM channels WHERE app_id = $1 AND name = $2`, appID, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("channel %q: %w", name, store.ErrNotFound)
	}
	return id, err
}

func validGroup(g store.Group) error {
	if strings.TrimSpace(g.Name) == "" || strings.TrimSpace(g.Track) == "" {
		return fmt.Errorf("a group needs a name and a track: %w", store.ErrInvalid)
	}
	if err := g.Policy.Validate(); err != nil {
		return fmt.Errorf("%w: %w", store.ErrInvalid, err)
	}
	return nil
}

func policyJSON(p policy.Policy) (string, error) {
	b, err := json.Marshal(p)
	return string(b), err
}

// CreateGroup implements store.Store.
func (db *DB) CreateGroup(ctx context.Context, g store.Group) (store.Group, error) {
	g.AppID = store.NormalizeAppID(g.AppID)
	if err := validGroup(g); err != nil {
		return store.Group{}, db.wrap("creating group", err)
	}
	now := ms(db.now())
	g.CreatedAt, g.UpdatedAt = fromMS(now), fromMS(now)
	err := db.recordTx(ctx, func(tx *sql.Tx, rec *recorder) error {
		if err := requireApp(ctx, tx, g.AppID); err != nil {
			return err
		}
		ch, err := channelID(ctx, tx, g.AppID, g.Channel)
		if err != nil {
			return err
		}
		pol, err := policyJSON(g.Policy)
		if err != nil {
			return err
		}
		g.Version = 1
		err = tx.QueryRowContext(ctx, `INSERT INTO app_groups (app_id, name, track, channel_id, updates_enabled, created_at, updated_at, policy, paused, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1) RETURNING id`, g.AppID, g.Name, g.Track, ch, g.UpdatesEnabled, now, now, pol, g.Paused).Scan(&g.ID)
		if err != nil {
			return err
		}
		e, err := groupEntry(store.ActionGroupCreate, nil, g, "")
		if err != nil {
			return err
		}
		if err := rec.add(ctx, tx, e); err != nil {
			return err
		}
		return bumpGeneration(ctx, tx)
	})
	return g, db.wrap(fmt.Sprintf("creating group %q", g.Name), err)
}

// UpdateGroup implements store.Store.
func (db *DB) UpdateGroup(ctx context.Context, appID, name string, update func(*store.Group) error) (store.Group, error) {
	appID = store.NormalizeAppID(appID)
	var g store.Group
	err := db.recordTx(ctx, func(tx *sql.Tx, rec *recorder) error {
		var err error
		g, err = lockGroup(ctx, tx, db.d, `g.app_id = $1 AND g.name = $2`, appID, name)
		if err != nil {
			return err
		}
		// The view is marshalled before update runs: it may change what g shares.
		before, err := json.Marshal(groupView(g))
		if err != nil {
			return err
		}
		id, app, created, version := g.ID, g.AppID, g.CreatedAt, g.Version
		halt, haltedAt, resumed := g.HaltReason, g.HaltedAt, g.ResumedAt
		if err := update(&g); err != nil {
			return err
		}
		// The rollout state changes only through SetRolloutState and the halt.
		g.ID, g.AppID, g.CreatedAt, g.Version = id, app, created, version+1
		g.HaltReason, g.HaltedAt, g.ResumedAt = halt, haltedAt, resumed
		if err := validGroup(g); err != nil {
			return err
		}
		ch, err := channelID(ctx, tx, appID, g.Channel)
		if err != nil {
			return err
		}
		g.UpdatedAt = fromMS(ms(db.now()))
		pol, err := policyJSON(g.Policy)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE app_groups SET name = $1, track = $2, channel_id = $3, updates_enabled = $4, updated_at = $5,
			policy = $6, paused = $7, version = $8 WHERE id = $9`,
			g.Name, g.Track, ch, g.UpdatesEnabled, ms(g.UpdatedAt), pol, g.Paused, g.Version, g.ID)
		if err != nil {
			return err
		}
		e, err := groupEntry(store.ActionGroupUpdate, json.RawMessage(before), g, "")
		if err != nil {
			return err
		}
		if err := rec.add(ctx, tx, e); err != nil {
			return err
		}
		return bumpGeneration(ctx, tx)
	})
	return g, db.wrap(fmt.Sprintf("updating group %q", name), err)
}

// GetGroup implements store.Store.
func (db *DB) GetGroup(ctx context.Context, appID, name string) (store.Group, error) {
	g, err := scanGroup(db.r.QueryRowContext(ctx, groupSelect+` WHERE g.app_id = $1 AND g.name = $2`, store.NormalizeAppID(appID), name))
	return g, db.wrap(fmt.Sprintf("group %q", name), err)
}

// ListGroups implements store.Store.
func (db *DB) ListGroups(ctx context.Context, appID string) ([]store.Group, error) {
	appID = store.NormalizeAppID(appID)
	var out []store.Group
	err := db.inReadTx(ctx, func(tx *sql.Tx) error {
		if err := requireApp(ctx, tx, appID); err != nil {
			return err
		}
		var err error
		out, err = listGroups(ctx, tx, appID)
		return err
	})
	return out, db.wrap("listing groups", err)
}

func listGroups(ctx context.Context, tx *sql.Tx, appID string) ([]store.Group, error) {
	rows, err := tx.QueryContext(ctx, groupSelect+` WHERE ($1 = '' OR g.app_id = $1) ORDER BY g.app_id, g.name`, appID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.Group{}
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// LoadCatalog implements store.Store.
func (db *DB) LoadCatalog(ctx context.Context) (*store.Catalog, error) {
	c := &store.Catalog{}
	err := db.inReadTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT generation FROM catalog_generation WHERE id = 1`).Scan(&c.Generation); err != nil {
			return err
		}
		var err error
		if c.Apps, err = listApps(ctx, tx); err != nil {
			return err
		}
		if c.Groups, err = listGroups(ctx, tx, ""); err != nil {
			return err
		}
		if c.Channels, err = listChannels(ctx, tx, "", ""); err != nil {
			return err
		}
		if c.Releases, err = listAllReleases(ctx, tx); err != nil {
			return err
		}
		c.Deltas, err = listAllDeltas(ctx, tx)
		return err
	})
	if err != nil {
		return nil, db.wrap("loading catalog", err)
	}
	return c, nil
}

// lockGroup reads one group row (where is over alias g), locked for the rest of tx on
// databases with row locks.
func lockGroup(ctx context.Context, tx *sql.Tx, d Dialect, where string, args ...any) (store.Group, error) {
	q := groupSelect + ` WHERE ` + where
	if d.LockRow != "" {
		q += d.LockRow + ` OF g`
	}
	g, err := scanGroup(tx.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return g, fmt.Errorf("group %v: %w", args[len(args)-1], store.ErrNotFound)
	}
	return g, err
}

// listAllReleases reads every release without its targets metadata.
func listAllReleases(ctx context.Context, tx *sql.Tx) ([]store.Release, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, app_id, version, board, file_name, size, sha256, sha1, hosted, url, NULL, created_at
		FROM releases ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Release
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

// newBackupCmd returns `omaha-server backup --to FILE`: a consistent copy of the SQLite
// store, taken while servers keep running. PostgreSQL is backed up with pg_dump.
func newBackupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup --to FILE [--data-dir DIR]",
		Short: "copy the SQLite store to a new file while the server runs (PostgreSQL: use pg_dump)",
		Long: "backup writes a consistent copy of the SQLite database in --data-dir to a new file,\n" +
			"while servers keep using it. To restore: stop the server, remove omaha-server.db-wal and\n" +
			"omaha-server.db-shm from the data directory and put the copy in place of omaha-server.db.\n" +
			"Hosted payloads in the data directory are plain files: copy them alongside.",
		Args: usage.NoArgs,
	}
	var sf storeFlags
	sf.register(cmd.Flags())
	to := cmd.Flags().String("to", "", "the backup file to write; it must not exist")
	cmd.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
		return backup(ctx, sf, *to, stdout)
	})
	return cmd
}

func backup(ctx context.Context, sf storeFlags, to string, stdout io.Writer) error {
	if to == "" {
		return fmt.Errorf("%w: --to FILE is required", errUsage)
	}
	if sf.db != "" {
		return fmt.Errorf("%w: backup copies the SQLite store; back up PostgreSQL with pg_dump (see docs/omaha-server.md)", errUsage)
	}
	info, err := sqlite.Backup(ctx, filepath.Join(sf.dataDir, sqlite.FileName), to)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s: %d bytes, schema migration %d\n",
		filepath.Join(sf.dataDir, sqlite.FileName), info.Path, info.Bytes, info.Migration)
	return nil
}

// Package pgtest starts throwaway PostgreSQL clusters for tests and benchmarks: Debian's
// `postgresql` binaries (/usr/lib/postgresql/*/bin: initdb and postgres) run on a free
// loopback port with their data in a temporary directory that is removed afterwards.
//
// PostgreSQL refuses to run as root, so when the test runs as root the cluster runs as the
// `postgres` user (or `nobody`) through the process credentials. The cluster trades
// durability for speed (fsync=off, synchronous_commit=off, full_page_writes=off) unless
// Options.Durable is set: it is for tests, never for data. Each test gets its own database
// (CreateDB) in a cluster shared by the test binary.
//
// When the binaries are missing, New skips the test loudly with the install command.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNoPostgres is returned when Debian's postgresql binaries are not installed.
var ErrNoPostgres = errors.New("pgtest: PostgreSQL binaries not found in /usr/lib/postgresql/*/bin (apt-get install postgresql)")

// Options tune a cluster; the zero value is a fast, non-durable cluster.
type Options struct {
	// Durable keeps fsync and synchronous commits on.
	Durable bool
	// MaxConnections is PostgreSQL's max_connections (200 when 0).
	MaxConnections int
}

// Cluster is a running throwaway PostgreSQL.
type Cluster struct {
	dir  string
	port int
	cmd  *exec.Cmd
	done chan error
	log  *os.File

	mu  sync.Mutex
	seq int
}

// BinDir returns the newest /usr/lib/postgresql/*/bin holding initdb and postgres.
func BinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "postgres")); err != nil {
			continue
		}
		return d, nil
	}
	return "", ErrNoPostgres
}

// credential returns the credential to run PostgreSQL with: nil when not root.
func credential() (*syscall.Credential, int, int, error) {
	if os.Geteuid() != 0 {
		return nil, -1, -1, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid, gid, nil
	}
	return nil, -1, -1, errors.New("pgtest: running as root and neither the postgres nor the nobody user exists")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start initialises and starts a cluster. Stop it with Stop.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	cred, uid, gid, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{dir: dir, done: make(chan error, 1)}
	fail := func(err error) (*Cluster, error) {
		c.Stop()
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fail(fmt.Errorf("pgtest: %w", err))
	}
	if cred != nil {
		if err := os.Chown(dir, uid, gid); err != nil {
			return fail(fmt.Errorf("pgtest: %w", err))
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("pgtest: initdb: %w\n%s", err, out))
	}
	maxConns := opts.MaxConnections
	if maxConns <= 0 {
		maxConns = 200
	}
	args := []string{"-D", data, "-k", dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections=" + strconv.Itoa(maxConns), "-c", "shared_buffers=128MB"}
	if !opts.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	c.log, err = os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return fail(fmt.Errorf("pgtest: %w", err))
	}
	// A port taken between freePort and the server's bind makes postgres exit; retry.
	for attempt := 0; ; attempt++ {
		c.port, err = freePort()
		if err != nil {
			return fail(fmt.Errorf("pgtest: %w", err))
		}
		c.cmd = exec.Command(filepath.Join(bin, "postgres"), append(args, "-p", strconv.Itoa(c.port))...)
		c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
		c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
		c.cmd.Dir = dir
		if err := c.cmd.Start(); err != nil {
			return fail(fmt.Errorf("pgtest: starting postgres: %w", err))
		}
		c.done = make(chan error, 1)
		go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(c.cmd, c.done)
		err = c.waitReady(ctx)
		if err == nil {
			return c, nil
		}
		if attempt == 2 {
			return fail(err)
		}
		c.kill()
	}
}

func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-c.done:
			c.cmd = nil
			log, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
			return fmt.Errorf("pgtest: postgres exited: %v\n%s", err, log)
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgconn.Connect(cctx, c.URL("postgres"))
		cancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("pgtest: postgres did not become ready: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// URL returns the connection URL of database db.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// CreateDB creates a fresh database and returns its URL.
func (c *Cluster) CreateDB(ctx context.Context) (string, error) {
	c.mu.Lock()
	c.seq++
	name := fmt.Sprintf("test_%d", c.seq)
	c.mu.Unlock()
	conn, err := pgconn.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name).ReadAll(); err != nil {
		return "", fmt.Errorf("pgtest: creating database %s: %w", name, err)
	}
	return c.URL(name), nil
}

func (c *Cluster) kill() {
	if c.cmd == nil {
		return
	}
	// SIGINT is PostgreSQL's fast shutdown.
	c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	}
	c.cmd = nil
}

// Stop shuts the cluster down and removes its directory.
func (c *Cluster) Stop() {
	c.kill()
	if c.log != nil {
		c.log.Close()
	}
	os.RemoveAll(c.dir)
}

// Shared starts one cluster for a test binary on first use; call its returned stop function
// from TestMain after m.Run.
type Shared struct {
	once    sync.Once
	cluster *Cluster
	err     error
	opts    Options
}

// NewShared returns a Shared cluster started with opts on first use.
func NewShared(opts Options) *Shared { return &Shared{opts: opts} }

// Cluster returns the shared cluster, starting it on first use; it skips tb loudly when the
// binaries are missing and fails it when the cluster does not start.
func (s *Shared) Cluster(tb testing.TB) *Cluster {
	tb.Helper()
	s.once.Do(func() { s.cluster, s.err = Start(context.Background(), s.opts) })
	if errors.Is(s.err, ErrNoPostgres) {
		tb.Skip("SKIPPING PostgreSQL test: " + s.err.Error() + " — run `apt-get install postgresql` (or `make deps`)")
	}
	if s.err != nil {
		tb.Fatal(s.err)
	}
	return s.cluster
}

// DB creates a fresh database in the shared cluster and returns its URL.
func (s *Shared) DB(tb testing.TB) string {
	tb.Helper()
	url, err := s.Cluster(tb).CreateDB(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return url
}

// Stop stops the shared cluster if it was started.
func (s *Shared) Stop() {
	if s.cluster != nil {
		s.cluster.Stop()
	}
}

// Describe is a one-line description of the cluster for logs.
func (c *Cluster) Describe() string {
	return strings.TrimSpace(fmt.Sprintf("postgres on 127.0.0.1:%d in %s", c.port, c.dir))
}

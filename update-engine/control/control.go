// Package control is update-engine's local control API: JSON over HTTP on a unix socket, the
// role D-Bus (com.coreos.update1) plays for Flatcar's update_engine.
//
// # Endpoints
//
//	GET  /v1/status              the engine.Snapshot as JSON
//	GET  /v1/status?after=SEQ    long poll: answers when the snapshot's Seq passes SEQ, or
//	                             after WaitTimeout with the current snapshot
//	POST /v1/check               start an on-demand check (installsource="ondemandupdate");
//	                             409 when the engine is busy
//	POST /v1/mark-good           mark the running USR partition good
//	POST /v1/rollback            make the other, known-good partition boot next
//	POST /v1/reset-status        Flatcar's ResetStatus: UPDATED_NEED_REBOOT back to IDLE,
//	                             the partition table untouched; 409 while an update runs
//
// Errors are {"error": "..."} with a 4xx/5xx status. Access control is the socket's file
// mode (0660, root and the group of the socket's directory): whoever can connect may ask
// for a check, as Flatcar lets user core call AttemptUpdate. Request bodies are not read.
//
// Server wraps anything that implements Daemon; Client is what updatectl uses.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/switchyard-os/switchyard/update-engine/engine"
)

// WaitTimeout bounds one long poll.
const WaitTimeout = 30 * time.Second

// ErrBusy is returned (and mapped to 409) when a check is asked for while one runs.
var ErrBusy = errors.New("control: the engine is busy")

// Daemon is what the API serves.
type Daemon interface {
	Snapshot() engine.Snapshot
	Wait(ctx context.Context, after uint64) (engine.Snapshot, error)
	CheckNow() error
	MarkGood(ctx context.Context) error
	Rollback(ctx context.Context) error
	ResetStatus(ctx context.Context) error
}

// Handler returns the API's http.Handler.
func Handler(d Daemon, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		after := r.URL.Query().Get("after")
		if after == "" {
			writeJSON(w, http.StatusOK, d.Snapshot())
			return
		}
		seq, err := strconv.ParseUint(after, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("control: bad after=%q", after))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), WaitTimeout)
		defer cancel()
		s, err := d.Wait(ctx, seq)
		if err != nil && r.Context().Err() != nil {
			return // the client went away
		}
		writeJSON(w, http.StatusOK, s)
	})
	action := func(name string, f func(ctx context.Context) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			log.Info("control request", "action", name)
			if err := f(r.Context()); err != nil {
				code := http.StatusInternalServerError
				if errors.Is(err, ErrBusy) || errors.Is(err, engine.ErrBusy) {
					code = http.StatusConflict
				}
				writeError(w, code, err)
				return
			}
			writeJSON(w, http.StatusOK, d.Snapshot())
		}
	}
	mux.Handle("POST /v1/check", action("check", func(context.Context) error { return d.CheckNow() }))
	mux.Handle("POST /v1/mark-good", action("mark-good", d.MarkGood))
	mux.Handle("POST /v1/rollback", action("rollback", d.Rollback))
	mux.Handle("POST /v1/reset-status", action("reset-status", d.ResetStatus))
	return mux
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, errorBody{Error: err.Error()})
}

// Listen creates the unix socket at path (removing a stale one) with mode 0660.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control: %s exists and is not a socket", path)
		}
		// A socket nobody answers on is stale; one that answers belongs to a running daemon.
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control: another daemon listens on %s", path)
		}
		os.Remove(path)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	return l, nil
}

// Serve serves the API on l until ctx ends.
func Serve(ctx context.Context, l net.Listener, d Daemon, log *slog.Logger) error {
	srv := &http.Server{Handler: Handler(d, log), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		case <-done:
		}
	}()
	err := srv.Serve(l)
	close(done)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("control: %w", err)
}

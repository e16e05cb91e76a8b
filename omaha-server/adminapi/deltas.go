package adminapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"

	"github.com/gorilla/mux"
	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/payloads"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// Delta payloads of a release:
//
//	GET  POST   /api/v1/apps/{app}/releases/{board}/{version}/deltas
//
// A POST takes one delta, for one source version: a multipart/form-data upload with the
// parts of a release upload ("metadata" = DeltaMetadata with file_name, optionally
// "targets", then "payload"; the file is stored beside the release's full payload), or a
// JSON DeltaMetadata with url, size and sha256 for a delta hosted elsewhere. The release
// must exist (404); a second delta from the same source version, or a file name the
// release already uses, is 409 and leaves everything as it was. Each delta is vetted by
// Config.CheckDelta (the TUF host: its own target, pinned beside the full payload).

// DeltaMetadata describes a delta payload being published.
type DeltaMetadata struct {
	SourceVersion string `json:"source_version"`
	FileName      string `json:"file_name,omitempty"`
	Size          int64  `json:"size"`
	SHA256        string `json:"sha256,omitempty"`
	SHA1          string `json:"sha1,omitempty"`
	URL           string `json:"url,omitempty"`
}

// check validates m for the release (version, board) with the rules of a release's
// metadata, and the source version.
func (m *DeltaMetadata) check(version, board string, hosted bool) error {
	src, err := omaha.ParseVersion(m.SourceVersion)
	if err != nil {
		return badRequest("source_version: %v", err)
	}
	if v, err := omaha.ParseVersion(version); err == nil && !src.Less(v) {
		return badRequest("source_version %s is not below the release %s", m.SourceVersion, version)
	}
	rm := ReleaseMetadata{Version: version, Board: board, FileName: m.FileName, Size: m.Size, SHA256: m.SHA256, SHA1: m.SHA1, URL: m.URL}
	if err := rm.check(hosted); err != nil {
		return err
	}
	m.FileName, m.SHA256, m.SHA1 = rm.FileName, rm.SHA256, rm.SHA1
	return nil
}

func (a *API) listDeltas(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	ds, err := a.cfg.Store.ListDeltas(r.Context(), v["app"], v["version"], v["board"])
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ds)
}

func (a *API) publishDelta(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	key := store.Delta{AppID: store.NormalizeAppID(v["app"]), Version: v["version"], Board: v["board"]}
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var d store.Delta
	var err error
	switch mt {
	case "application/json":
		d, err = a.publishDeltaExternal(w, r, key)
	case "multipart/form-data":
		d, err = a.publishDeltaUpload(w, r, key, params["boundary"])
	default:
		err = badRequest("Content-Type %q: want application/json (a delta hosted elsewhere) or multipart/form-data (an upload)", mt)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.wrote(r, "delta", "app", d.AppID, "version", d.Version, "board", d.Board, "source_version", d.SourceVersion, "hosted", d.Hosted, "size", d.Size)
	writeJSON(w, http.StatusCreated, d)
}

func (a *API) publishDeltaExternal(w http.ResponseWriter, r *http.Request, d store.Delta) (store.Delta, error) {
	var m DeltaMetadata
	if err := decode(w, r, &m); err != nil {
		return store.Delta{}, err
	}
	if err := m.check(d.Version, d.Board, false); err != nil {
		return store.Delta{}, err
	}
	if err := a.deltaPreflight(r.Context(), d, m); err != nil {
		return store.Delta{}, err
	}
	d.SourceVersion, d.FileName, d.Size, d.SHA256, d.SHA1, d.URL = m.SourceVersion, m.FileName, m.Size, m.SHA256, m.SHA1, m.URL
	if err := a.checkDelta(r.Context(), d); err != nil {
		return store.Delta{}, err
	}
	return a.cfg.Store.CreateDelta(r.Context(), d)
}

// deltaPreflight refuses, before a byte of the payload is stored, a delta the store would
// refuse: the file is placed beside the release's full payload, so a name the release
// already uses must never reach the payload directory.
func (a *API) deltaPreflight(ctx context.Context, d store.Delta, m DeltaMetadata) error {
	rel, err := a.cfg.Store.GetRelease(ctx, d.AppID, d.Version, d.Board)
	if err != nil {
		return err
	}
	if rel.FileName == m.FileName {
		return fmt.Errorf("adminapi: %q is the release's full payload: %w", m.FileName, store.ErrConflict)
	}
	ds, err := a.cfg.Store.ListDeltas(ctx, d.AppID, d.Version, d.Board)
	if err != nil {
		return err
	}
	for _, o := range ds {
		switch {
		case o.SourceVersion == m.SourceVersion:
			return fmt.Errorf("adminapi: release %s has a delta from %s: %w", d.Version, m.SourceVersion, store.ErrConflict)
		case o.FileName == m.FileName:
			return fmt.Errorf("adminapi: release %s has a delta named %q: %w", d.Version, m.FileName, store.ErrConflict)
		}
	}
	return nil
}

func (a *API) checkDelta(ctx context.Context, d store.Delta) error {
	if a.cfg.CheckDelta == nil {
		return nil
	}
	if err := a.cfg.CheckDelta(ctx, d); err != nil {
		return badRequest("delta refused: %v", err)
	}
	return nil
}

func (a *API) publishDeltaUpload(w http.ResponseWriter, r *http.Request, d store.Delta, boundary string) (store.Delta, error) {
	if boundary == "" {
		return store.Delta{}, badRequest("multipart body without a boundary")
	}
	if r.ContentLength > 0 && r.ContentLength > a.cfg.MaxPayloadBytes+multipartOverhead {
		return store.Delta{}, fmt.Errorf("%w: the body is %d bytes", payloads.ErrTooLarge, r.ContentLength)
	}
	mr := multipart.NewReader(http.MaxBytesReader(w, r.Body, a.cfg.MaxPayloadBytes+multipartOverhead), boundary)
	var m DeltaMetadata
	var targets []byte
	for step := 0; ; step++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			return store.Delta{}, badRequest("the upload has no \"payload\" part")
		}
		if err != nil {
			return store.Delta{}, badRequest("reading the multipart body: %v", err)
		}
		switch name := part.FormName(); {
		case name == "metadata" && step == 0:
			dec := json.NewDecoder(io.LimitReader(part, MaxJSONBytes))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&m); err != nil {
				return store.Delta{}, badRequest("the metadata part: %v", err)
			}
			if err := m.check(d.Version, d.Board, true); err != nil {
				return store.Delta{}, err
			}
			if err := a.deltaPreflight(r.Context(), d, m); err != nil {
				return store.Delta{}, err
			}
		case name == "targets" && step == 1:
			targets, err = io.ReadAll(io.LimitReader(part, MaxTargetsBytes+1))
			if err != nil {
				return store.Delta{}, badRequest("reading the targets part: %v", err)
			}
			if len(targets) > MaxTargetsBytes {
				return store.Delta{}, fmt.Errorf("%w: targets metadata over %d bytes", payloads.ErrTooLarge, MaxTargetsBytes)
			}
			if !json.Valid(targets) {
				return store.Delta{}, badRequest("the targets part is not JSON (signed TUF targets metadata)")
			}
		case name == "payload" && step > 0:
			return a.storeDelta(r.Context(), d, m, targets, part, mr)
		default:
			return store.Delta{}, badRequest("unexpected part %q at position %d (want metadata, [targets,] payload)", name, step+1)
		}
	}
}

func (a *API) storeDelta(ctx context.Context, d store.Delta, m DeltaMetadata, targets []byte, part io.Reader, mr *multipart.Reader) (store.Delta, error) {
	var out store.Delta
	key := payloads.Key{App: d.AppID, Board: d.Board, Version: d.Version, Name: m.FileName}
	_, err := a.cfg.Payloads.Store(ctx, key, part, payloads.Expect{Size: m.Size, SHA256: m.SHA256}, func(s payloads.Sums) error {
		if _, err := mr.NextPart(); err != io.EOF {
			if err == nil {
				return badRequest("unexpected part after the payload")
			}
			return badRequest("reading the end of the multipart body: %v", err)
		}
		d.SourceVersion, d.FileName, d.Size, d.SHA256, d.SHA1, d.Hosted, d.TargetsMetadata =
			m.SourceVersion, m.FileName, s.Size, s.SHA256, s.SHA1, true, targets
		if err := a.checkDelta(ctx, d); err != nil {
			return err
		}
		var err error
		out, err = a.cfg.Store.CreateDelta(ctx, d)
		return err
	})
	return out, err
}

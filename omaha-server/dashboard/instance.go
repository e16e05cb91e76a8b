package dashboard

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// eventsLimit bounds the events the instance view shows per application.
const eventsLimit = 50

// InstanceView is one application's instance of a machine as the page shows it: the row,
// its status history and its newest events, each error code with its name.
type InstanceView struct {
	store.Instance
	LastErrorName string        `json:"last_error_name,omitempty"`
	History       []HistoryView `json:"history"`
	Events        []EventView   `json:"events"`
}

// HistoryView is a status change with its error code named.
type HistoryView struct {
	store.StatusChange
	ErrorName string `json:"error_name,omitempty"`
}

// EventView is an event with its type, result and error code named.
type EventView struct {
	store.Event
	TypeName   string `json:"type_name"`
	ResultName string `json:"result_name"`
	ErrorName  string `json:"error_name,omitempty"`
}

// ErrorName names an update_engine error code for people, from the omaha package's table
// (the one place the codes are named): 9 is "download transfer error", 44 "rollback
// error", 2404 "omaha request http response (404)"; flag bits follow after a comma. Zero
// has no name.
func ErrorName(code int64) string {
	if code == 0 {
		return ""
	}
	parts := strings.Split(omaha.ErrorCode(uint32(code)).String(), "|")
	for i, p := range parts {
		parts[i] = words(p)
	}
	return strings.Join(parts, ", ")
}

// words turns "DownloadTransferError" into "download transfer error", keeping a run of
// capitals (HTTP, PCR) as one word.
func words(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i, c := range r {
		if i > 0 && unicode.IsUpper(c) && (unicode.IsLower(r[i-1]) || i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1])) {
			b.WriteByte(' ')
		} else if i > 0 && c == '(' {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

// maxErrorNames bounds the codes one error-names request may ask for.
const maxErrorNames = 200

// errorNames answers ?code=9&code=44 with {"9": "download transfer error", …}: the
// instance list comes from the admin API, which sends codes only.
func (d *Dashboard) errorNames(r *http.Request) (any, error) {
	codes := r.URL.Query()["code"]
	if len(codes) > maxErrorNames {
		return nil, badRequest(fmt.Sprintf("at most %d codes", maxErrorNames))
	}
	out := map[string]string{}
	for _, c := range codes {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil {
			return nil, badRequest(fmt.Sprintf("code %q is not a number", c))
		}
		out[c] = ErrorName(n)
	}
	return out, nil
}

func (d *Dashboard) instance(r *http.Request) (any, error) {
	id := r.PathValue("machine")
	if id == "" || len(id) > maxQueryLen {
		return nil, badRequest("bad machine id")
	}
	details, err := d.cfg.Source.GetInstances(r.Context(), id, historyLimit)
	if err != nil {
		return nil, fmt.Errorf("dashboard: reading instance %s: %w", id, err)
	}
	out := make([]InstanceView, 0, len(details))
	for _, det := range details {
		v := InstanceView{Instance: det.Instance, LastErrorName: ErrorName(det.LastErrorCode),
			History: make([]HistoryView, 0, len(det.History)), Events: []EventView{}}
		for _, h := range det.History {
			v.History = append(v.History, HistoryView{StatusChange: h, ErrorName: ErrorName(h.ErrorCode)})
		}
		events, err := d.cfg.Source.ListEvents(r.Context(), det.AppID, det.MachineID, eventsLimit)
		if err != nil {
			return nil, fmt.Errorf("dashboard: reading the events of %s: %w", id, err)
		}
		for _, e := range events {
			v.Events = append(v.Events, EventView{Event: e, TypeName: omaha.EventType(e.Type).String(),
				ResultName: omaha.EventResult(e.Result).String(), ErrorName: ErrorName(e.ErrorCode)})
		}
		out = append(out, v)
	}
	return out, nil
}

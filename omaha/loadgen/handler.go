package loadgen

import (
	"net/http"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
)

// Baseline is an Omaha endpoint that does only the protocol work: it caps and parses the
// request, validates it, and answers every app with acks and either noupdate or, when Offer
// is set and the host runs an older version, the offer. It keeps no state. A server benchmark
// runs the same load against it and against the real server and reports the ratio, so the
// number says what the server's own logic costs.
type Baseline struct {
	Offer *omaha.Offer     // nil: always noupdate
	Now   func() time.Time // time.Now when nil
}

func (b *Baseline) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "omaha: POST only", http.StatusMethodNotAllowed)
		return
	}
	req, err := omaha.ParseRequest(http.MaxBytesReader(w, r.Body, omaha.DefaultMaxBodyBytes))
	if err == nil {
		err = req.Validate()
	}
	if err != nil {
		http.Error(w, err.Error(), omaha.HTTPStatus(err))
		return
	}
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	var target omaha.Version
	if b.Offer != nil {
		if target, err = omaha.ParseVersion(b.Offer.Version); err != nil {
			http.Error(w, "omaha: baseline offer: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	resp := omaha.NewResponse("switchyard-loadgen-baseline", now())
	for _, app := range req.Apps {
		a := omaha.NewAppResponse(app)
		if app.UpdateCheck != nil && b.Offer != nil {
			running, _ := omaha.ParseVersion(app.Version) // Validate checked it
			if running.Less(target) {
				if err := a.SetOffer(b.Offer); err != nil {
					http.Error(w, "omaha: baseline offer: "+err.Error(), http.StatusInternalServerError)
					return
				}
			}
		}
		resp.Apps = append(resp.Apps, a)
	}
	body, err := resp.Marshal()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write(body)
}

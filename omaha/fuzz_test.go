package omaha

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// reparseLimits are the limits for parsing what Marshal wrote: Marshal may add a <daystart>
// and escape characters (a tab becomes "&#x9;"), so the body and element bounds get room.
var reparseLimits = Limits{MaxBodyBytes: 8 << 20, MaxElements: DefaultMaxElements + 1}

func addGoldenSeeds(f *testing.F, dir string) {
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.xml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no golden files in %s: %v", dir, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkParseError holds for every error a parser returns: it is one of the package's bad-input
// errors, so a server answers 400 or 413 and never 500.
func checkParseError(t *testing.T, err error) {
	t.Helper()
	if st := HTTPStatus(err); st != http.StatusBadRequest && st != http.StatusRequestEntityTooLarge {
		t.Fatalf("error %v (%T) maps to HTTP %d", err, err, st)
	}
}

// FuzzParseRequest: ParseRequest never panics; errors are typed bad-input errors; an accepted
// request survives Marshal and ParseRequest unchanged, and marshals to the same bytes again.
func FuzzParseRequest(f *testing.F) {
	addGoldenSeeds(f, "requests")
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastMatchesReference(t, data)
		req, err := ParseRequest(bytes.NewReader(data))
		if err != nil {
			checkParseError(t, err)
			if req != nil {
				t.Fatal("request returned with an error")
			}
			return
		}
		if err := req.Validate(); err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrProtocol) {
				t.Fatalf("Validate error %v wraps no sentinel", err)
			}
		}
		for _, a := range req.Apps {
			NewAppResponse(a) // must not panic on anything parsed
		}
		b1, err := req.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		checkSameAsReflect(t, req, b1)
		req2, err := reparseLimits.ParseRequest(bytes.NewReader(b1))
		if err != nil {
			t.Fatalf("parsing marshaled request: %v\n%s", err, b1)
		}
		if !reflect.DeepEqual(req, req2) {
			t.Fatalf("round trip changed the request:\n%#v\n%#v", req, req2)
		}
		b2, err := req2.Marshal()
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("second Marshal differs: %v\n%s\n%s", err, b1, b2)
		}
	})
}

// FuzzParseResponse: as FuzzParseRequest for responses; in addition Offer never panics, and an
// offer it returns is valid and survives SetOffer, Marshal, ParseResponse and Offer unchanged.
func FuzzParseResponse(f *testing.F) {
	addGoldenSeeds(f, "responses")
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastMatchesReference(t, data)
		resp, err := ParseResponse(bytes.NewReader(data))
		if err != nil {
			checkParseError(t, err)
			return
		}
		b1, err := resp.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		checkSameAsReflect(t, resp, b1)
		resp2, err := reparseLimits.ParseResponse(bytes.NewReader(b1))
		if err != nil {
			t.Fatalf("parsing marshaled response: %v\n%s", err, b1)
		}
		if !reflect.DeepEqual(resp, resp2) {
			t.Fatalf("round trip changed the response:\n%#v\n%#v", resp, resp2)
		}
		if b2, err := resp2.Marshal(); err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("second Marshal differs: %v\n%s\n%s", err, b1, b2)
		}

		offer, err := resp.Offer("")
		if err != nil {
			var se *StatusError
			if !errors.Is(err, ErrNoUpdate) && !errors.Is(err, ErrInvalid) && !errors.As(err, &se) {
				t.Fatalf("Offer error %v is none of ErrNoUpdate, ErrInvalid, *StatusError", err)
			}
			return
		}
		if err := offer.Validate(); err != nil {
			t.Fatalf("Offer returned an invalid offer: %v", err)
		}
		a := NewAppResponse(&App{AppID: resp.Apps[0].AppID, UpdateCheck: &UpdateCheck{}})
		if err := a.SetOffer(offer); err != nil {
			t.Fatalf("SetOffer: %v", err)
		}
		out := &Response{Protocol: ProtocolVersion, Apps: []*AppResponse{a}}
		b, err := out.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		checkSameAsReflect(t, out, b)
		back, err := reparseLimits.ParseResponse(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("parsing built offer: %v\n%s", err, b)
		}
		offer2, err := back.Offer("")
		if err != nil {
			t.Fatalf("Offer of built response: %v\n%s", err, b)
		}
		offer.Package.Required = true // SetOffer marks the payload required
		if !reflect.DeepEqual(offer, offer2) {
			t.Fatalf("offer changed:\n%+v\n%+v", offer, offer2)
		}
	})
}

// FuzzParseVersion: ParseVersion never panics; an accepted version prints as its input, and
// Compare is a total order consistent with it.
func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"4081.2.0", "0.0.0.0", "4081.2.0+nightly-20240101", "1.0.0-rc.1", "1.2", "x"} {
		f.Add(s, "4081.2.0")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		va, errA := ParseVersion(a)
		vb, errB := ParseVersion(b)
		if errA != nil {
			if !errors.Is(errA, ErrVersion) {
				t.Fatalf("error %v does not wrap ErrVersion", errA)
			}
			return
		}
		if va.String() != a {
			t.Fatalf("String() = %q, want %q", va.String(), a)
		}
		if va.Compare(va) != 0 {
			t.Fatalf("%s not equal to itself", a)
		}
		if errB != nil {
			return
		}
		if va.Compare(vb) != -vb.Compare(va) {
			t.Fatalf("Compare not antisymmetric for %q, %q", a, b)
		}
	})
}

package omaha

import (
	"bytes"
	"encoding/xml"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// checkFastMatchesReference: whenever the fast path accepts data, encoding/xml behind the
// checker (the reference) accepts it too and decodes exactly the same value.
func checkFastMatchesReference(t *testing.T, data []byte) (fast bool) {
	t.Helper()
	lim := Limits{}.withDefaults()
	if int64(len(data)) > lim.MaxBodyBytes {
		return false
	}
	tree, ok := fastTree(data, lim)
	if !ok {
		return false
	}
	var got, want any
	var root string
	switch string(tree.name) {
	case "request":
		var r Request
		if !fillRequest(tree, &r) {
			return false
		}
		got, want, root = &r, &Request{}, "request"
	case "response":
		var r Response
		if !fillResponse(tree, &r) {
			return false
		}
		got, want, root = &r, &Response{}, "response"
	default:
		return false
	}
	if err := lim.decode(data, root, want); err != nil {
		t.Fatalf("fast path accepted what encoding/xml refuses (%v):\n%q", err, data)
	}
	switch w := want.(type) {
	case *Request:
		w.XMLName = xml.Name{}
	case *Response:
		w.XMLName = xml.Name{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fast path and encoding/xml differ on\n%q\nfast %#v\nref  %#v", data, got, want)
	}
	return true
}

func goldenDocs(t *testing.T) [][]byte {
	t.Helper()
	var docs [][]byte
	for _, dir := range []string{"requests", "responses"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.xml"))
		if len(files) == 0 {
			t.Fatalf("no golden files in %s", dir)
		}
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			docs = append(docs, b)
		}
	}
	return docs
}

// TestFastPathTakesRealDocuments: every golden document the reference accepts is read by
// the fast path, with the same result; so real peers' documents take it.
func TestFastPathTakesRealDocuments(t *testing.T) {
	lim := Limits{}.withDefaults()
	taken := 0
	for _, doc := range goldenDocs(t) {
		var root string
		if bytes.Contains(doc, []byte("<request")) {
			root = "request"
		} else {
			root = "response"
		}
		var v any = &Request{}
		if root == "response" {
			v = &Response{}
		}
		if lim.decode(doc, root, v) != nil {
			continue // a bad-input golden file
		}
		if !checkFastMatchesReference(t, doc) {
			t.Errorf("fast path gave up on a plain golden document:\n%s", doc)
		}
		taken++
	}
	if taken < 20 {
		t.Fatalf("only %d golden documents checked", taken)
	}
}

// TestFastPathMatchesReferenceOnMutations runs the differential check on 40,000 variants of
// the golden documents: bytes changed, inserted (quotes, entities, brackets, control and
// non-ASCII bytes), removed and duplicated, documents cut short.
func TestFastPathMatchesReferenceOnMutations(t *testing.T) {
	docs := goldenDocs(t)
	rng := rand.New(rand.NewPCG(3, 5))
	inserts := []string{"&", "&amp;", "&#x41;", "&#65;", "&#0;", "&lt;", "&bogus;", "<", ">", "/>", "\"", "'", " ", "\t", "\n", "\r",
		"\x00", "\xff", "é", "=", "a=\"1\"", ":", "<x/>", "</app>", "<!-- c -->", "<?pi?>", "]]>", "<![CDATA[x]]>", "9", "-1", "true", "TRUE"}
	accepted := 0
	for i := range 40000 {
		d := append([]byte(nil), docs[i%len(docs)]...)
		for range 1 + rng.IntN(3) {
			if len(d) == 0 {
				break
			}
			at := rng.IntN(len(d))
			switch rng.IntN(5) {
			case 0:
				d[at] = byte(rng.IntN(256))
			case 1:
				ins := inserts[rng.IntN(len(inserts))]
				d = append(d[:at], append([]byte(ins), d[at:]...)...)
			case 2:
				n := min(1+rng.IntN(8), len(d)-at)
				d = append(d[:at], d[at+n:]...)
			case 3:
				n := min(1+rng.IntN(40), len(d)-at)
				d = append(d[:at], append(append([]byte(nil), d[at:at+n]...), d[at:]...)...)
			case 4:
				d = d[:at]
			}
		}
		if checkFastMatchesReference(t, d) {
			accepted++
		}
	}
	if accepted < 1000 {
		t.Fatalf("the fast path accepted only %d of 40,000 variants: the check tests too little", accepted)
	}
	t.Logf("fast path accepted %d variants, each equal to encoding/xml's result", accepted)
}

// TestFastPathReadsWhatMarshalWrites: random requests and responses with printable ASCII
// values (quotes, ampersands, brackets, tabs and newlines among them) are read back by the
// fast path, as the reference reads them.
func TestFastPathReadsWhatMarshalWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 13))
	ascii := []string{"", "4081.2.0", "a\"b'c&d<e>f", "tab\there\nnl\rcr", "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}", "x y"}
	taken := 0
	forRandomDocuments(t, rng, 3000, ascii, func(_ any, doc []byte) {
		if checkFastMatchesReference(t, doc) {
			taken++
		}
	})
	if taken != 6000 {
		t.Fatalf("the fast path read only %d of 6,000 marshaled documents", taken)
	}
}

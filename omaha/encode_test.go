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

// marshalReflect is what encoding/xml writes for v's struct tags: the hand-written encoder
// must write exactly the same bytes.
func marshalReflect(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString(xmlHeader)
	if err := xml.NewEncoder(&b).Encode(v); err != nil {
		t.Fatalf("encoding/xml: %v", err)
	}
	return b.Bytes()
}

func checkSameAsReflect(t *testing.T, v any, got []byte) {
	t.Helper()
	if want := marshalReflect(t, v); !bytes.Equal(got, want) {
		t.Fatalf("hand-written encoder differs from encoding/xml:\n got %s\nwant %s", got, want)
	}
}

// TestEncoderMatchesReflectGolden marshals every golden request and response both ways.
func TestEncoderMatchesReflectGolden(t *testing.T) {
	for _, dir := range []string{"requests", "responses"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.xml"))
		if len(files) == 0 {
			t.Fatalf("no golden files in %s", dir)
		}
		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			var v interface{ Marshal() ([]byte, error) }
			if dir == "requests" {
				v, err = ParseRequest(bytes.NewReader(data))
			} else {
				v, err = ParseResponse(bytes.NewReader(data))
			}
			if err != nil {
				continue // the bad-input golden files
			}
			got, err := v.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			checkSameAsReflect(t, v, got)
		}
	}
}

// TestEncoderMatchesReflectRandom fills every field of requests and responses at random
// (strings with characters that need escaping and invalid UTF-8, nil and set pointers,
// empty and full lists, zero and non-zero numbers) and compares both encoders.
func TestEncoderMatchesReflectRandom(t *testing.T) {
	forRandomDocuments(t, rand.New(rand.NewPCG(7, 11)), 3000, fillStrings, func(v any, doc []byte) {
		checkSameAsReflect(t, v, doc)
	})
}

// forRandomDocuments fills a fresh Request and a fresh Response at random n times each
// (see fillFrom; strings from strs), marshals them and hands each value and its document
// to check.
func forRandomDocuments(t *testing.T, rng *rand.Rand, n int, strs []string, check func(v any, doc []byte)) {
	t.Helper()
	for range n {
		for _, v := range []any{&Request{}, &Response{}} {
			fillFrom(rng, reflect.ValueOf(v).Elem(), 0, strs)
			var doc []byte
			var err error
			switch x := v.(type) {
			case *Request:
				doc, err = x.Marshal()
			case *Response:
				doc, err = x.Marshal()
			}
			if err != nil {
				t.Fatal(err)
			}
			check(v, doc)
		}
	}
}

var fillStrings = []string{"", "", "4081.2.0", "a\"b'c&d<e>f", "tab\there\nnl\rcr", "\xff\xfeinvalid", "ü€𝄞", "\x00\x01ctl", "\uFFFD", "\uFFFE"}

// fillFrom sets v (and what it points to) to random values, strings from strs.
func fillFrom(rng *rand.Rand, v reflect.Value, depth int, strs []string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(strs[rng.IntN(len(strs))])
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 0)
	case reflect.Int, reflect.Int64:
		v.SetInt([]int64{0, 0, 1, -3, 1 << 40}[rng.IntN(5)])
	case reflect.Uint32, reflect.Uint64:
		v.SetUint([]uint64{0, 0, 7, 1 << 31}[rng.IntN(4)])
	case reflect.Pointer:
		if rng.IntN(3) == 0 || depth > 6 {
			v.SetZero()
			return
		}
		p := reflect.New(v.Type().Elem())
		fillFrom(rng, p.Elem(), depth+1, strs)
		v.Set(p)
	case reflect.Slice:
		n := rng.IntN(3)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fillFrom(rng, s.Index(i), depth+1, strs)
		}
		v.Set(s)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(xml.Name{}) {
			return
		}
		for i := range v.NumField() {
			fillFrom(rng, v.Field(i), depth+1, strs)
		}
	}
}

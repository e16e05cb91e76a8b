package tuf

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseCustom(t *testing.T) {
	sha := strings.Repeat("0a", 32)
	tests := []struct {
		name string
		in   string
		want Custom
		err  bool
	}{
		{name: "full", in: `{"version":"4230.2.0","board":"amd64-usr","channels":"stable, beta","release_counter":4230002,"partition_size":1073741824,"partition_sha256":"` + sha + `","format":"sy1","min":-3}`,
			want: Custom{Version: "4230.2.0", Board: "amd64-usr", Channels: []string{"stable", "beta"}, ReleaseCounter: 4230002, PartitionSize: 1 << 30, PartitionSHA256: sha, Extra: map[string]any{"format": "sy1", "min": int64(-3)}}},
		{name: "minimal", in: `{"version":"1","board":"b"}`, want: Custom{Version: "1", Board: "b"}},
		{name: "no version", in: `{"board":"b"}`, err: true},
		{name: "float", in: `{"version":"1","board":"b","release_counter":1.5}`, err: true},
		{name: "exponent", in: `{"version":"1","board":"b","x":1e3}`, err: true},
		{name: "counter as string", in: `{"version":"1","board":"b","release_counter":"5"}`, err: true},
		{name: "version as number", in: `{"version":1,"board":"b"}`, err: true},
		{name: "bool", in: `{"version":"1","board":"b","x":true}`, err: true},
		{name: "nested", in: `{"version":"1","board":"b","x":{"y":1}}`, err: true},
		{name: "array", in: `{"version":"1","board":"b","x":[1]}`, err: true},
		{name: "null", in: `{"version":"1","board":"b","x":null}`, err: true},
		{name: "duplicate", in: `{"version":"1","version":"2","board":"b"}`, err: true},
		{name: "trailing", in: `{"version":"1","board":"b"}{}`, err: true},
		{name: "not object", in: `["version"]`, err: true},
		{name: "negative counter", in: `{"version":"1","board":"b","release_counter":-1}`, err: true},
		{name: "overflow", in: `{"version":"1","board":"b","release_counter":99999999999999999999}`, err: true},
		{name: "bad sha", in: `{"version":"1","board":"b","partition_sha256":"ABC"}`, err: true},
		{name: "upper sha", in: `{"version":"1","board":"b","partition_sha256":"` + strings.ToUpper(sha) + `"}`, err: true},
		{name: "space in version", in: `{"version":"1 2","board":"b"}`, err: true},
		{name: "bad channel", in: `{"version":"1","board":"b","channels":"st able"}`, err: true},
		{name: "bad extra name", in: `{"version":"1","board":"b","X-Y":"z"}`, err: true},
		{name: "too big", in: `{"version":"1","board":"b","x":"` + strings.Repeat("a", MaxCustomSize) + `"}`, err: true},
		{name: "truncated", in: `{"version":"1","board":"b"`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCustom([]byte(tt.in))
			if tt.err {
				if !errors.Is(err, ErrCustom) {
					t.Fatalf("ParseCustom = %+v, %v; want ErrCustom", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
			// Marshal and parse again: the same fields.
			data, err := got.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseCustom(data)
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip %s: %+v %v", data, again, err)
			}
		})
	}
}

func TestCustomMarshalRefuses(t *testing.T) {
	for name, c := range map[string]Custom{
		"float extra":  {Version: "1", Board: "b", Extra: map[string]any{"x": 1.5}},
		"int extra":    {Version: "1", Board: "b", Extra: map[string]any{"x": 3}}, // int, not int64
		"known extra":  {Version: "1", Board: "b", Extra: map[string]any{"version": "2"}},
		"no board":     {Version: "1"},
		"bad channel":  {Version: "1", Board: "b", Channels: []string{"a,b"}},
		"negative len": {Version: "1", Board: "b", PartitionSize: -1},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.MarshalJSON(); !errors.Is(err, ErrCustom) {
				t.Fatalf("MarshalJSON = %v, want ErrCustom", err)
			}
		})
	}
}

// FuzzParseCustom: whatever the input, ParseCustom either refuses it or returns fields
// that marshal and parse back to the same value. Seeds: testdata/fuzz/FuzzParseCustom.
func FuzzParseCustom(f *testing.F) {
	f.Add([]byte(`{"version":"4230.2.0","board":"amd64-usr","channels":"stable","release_counter":1,"partition_size":2}`))
	f.Add([]byte(`{"version":"1","board":"b","x":-9223372036854775808}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCustom(data)
		if err != nil {
			if !errors.Is(err, ErrCustom) {
				t.Fatalf("error without ErrCustom: %v", err)
			}
			return
		}
		out, err := c.MarshalJSON()
		if err != nil {
			t.Fatalf("parsed %q but cannot marshal: %v", data, err)
		}
		again, err := ParseCustom(out)
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip of %q: %+v %v, want %+v", out, again, err, c)
		}
	})
}

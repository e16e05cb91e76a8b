package omaha

import (
	"bytes"
	"encoding/xml"
	"os"
	"testing"
	"time"
)

// BenchmarkParseRequest parses the golden scheduled check with ParseRequest and reports the
// time as a ratio of plain xml.Unmarshal into the same types, measured in the same run: the
// cost of the limit checks.
func BenchmarkParseRequest(b *testing.B) {
	data, err := os.ReadFile("testdata/requests/scheduled-check.xml")
	if err != nil {
		b.Fatal(err)
	}
	const rounds = 2000
	measure := func(parse func() error) time.Duration {
		start := time.Now()
		for i := 0; i < rounds; i++ {
			if err := parse(); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	var base, ours time.Duration
	for b.Loop() {
		base += measure(func() error { var r Request; return xml.Unmarshal(data, &r) })
		ours += measure(func() error { _, err := ParseRequest(bytes.NewReader(data)); return err })
	}
	b.ReportMetric(float64(ours)/float64(base), "ratio-to-unchecked")
	b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N*rounds), "ns/parse")
}

// BenchmarkMarshalResponse marshals an update offer and reports it against xml.Marshal of the
// same value (the header is the only difference).
func BenchmarkMarshalResponse(b *testing.B) {
	resp := NewResponse("bench", time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	a := NewAppResponse(&App{AppID: FlatcarAppID, Ping: &Ping{Active: 1}, UpdateCheck: &UpdateCheck{}})
	if err := a.SetOffer(&Offer{Version: "4081.2.0", URLs: []string{"https://u.example/"}, Package: Package{Name: "p", Size: 1}, SHA256: make([]byte, 32)}); err != nil {
		b.Fatal(err)
	}
	resp.Apps = append(resp.Apps, a)
	const rounds = 2000
	var base, ours time.Duration
	for b.Loop() {
		start := time.Now()
		for i := 0; i < rounds; i++ {
			if _, err := xml.Marshal(resp); err != nil {
				b.Fatal(err)
			}
		}
		base += time.Since(start)
		start = time.Now()
		for i := 0; i < rounds; i++ {
			if _, err := resp.Marshal(); err != nil {
				b.Fatal(err)
			}
		}
		ours += time.Since(start)
	}
	b.ReportMetric(float64(ours)/float64(base), "ratio-to-xml.Marshal")
}

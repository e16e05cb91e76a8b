package omaha

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const validApp = `<app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" version="4081.2.0" track="stable" board="amd64-usr" machineid="m1"><ping active="1"/><updatecheck/></app>`

func request(body string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><request protocol="3.0" ismachine="1">` + body + `</request>`
}

func TestParseRequestBadInput(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		sentinel error
		typed    any // pointer to the typed error expected via errors.As
		status   int
	}{
		{"empty", "", ErrMalformed, new(*SyntaxError), 400},
		{"whitespace", "  \n ", ErrMalformed, new(*SyntaxError), 400},
		{"not xml", "hello", ErrMalformed, new(*SyntaxError), 400},
		{"unclosed", `<request protocol="3.0"><app appid="a" version="1.2.3">`, ErrMalformed, new(*SyntaxError), 400},
		{"mismatched tags", `<request protocol="3.0"><app></request>`, ErrMalformed, new(*SyntaxError), 400},
		{"wrong root", `<response protocol="3.0"/>`, ErrMalformed, new(*SyntaxError), 400},
		{"second root", request(validApp) + `<request protocol="3.0"/>`, ErrMalformed, new(*SyntaxError), 400},
		{"text after root", request(validApp) + `junk`, ErrMalformed, new(*SyntaxError), 400},
		{"bad int", request(`<app appid="a" version="1.2.3"><event eventtype="three" eventresult="1"/></app>`), ErrMalformed, new(*SyntaxError), 400},
		{"bad errorcode", request(`<app appid="a" version="1.2.3"><event eventtype="3" eventresult="0" errorcode="x"/></app>`), ErrInvalid, new(*ValidationError), 400},
		{"errorcode out of range", request(`<app appid="a" version="1.2.3"><event eventtype="3" eventresult="0" errorcode="4294967296"/></app>`), ErrInvalid, new(*ValidationError), 400},
		{"latin1 encoding", `<?xml version="1.0" encoding="ISO-8859-1"?><request protocol="3.0"/>`, ErrMalformed, new(*SyntaxError), 400},
		{"invalid utf-8", "<request protocol=\"3.0\"><app appid=\"\xff\"/></request>", ErrMalformed, new(*SyntaxError), 400},
		{"processing instruction", `<?xml version="1.0"?><?php evil() ?><request protocol="3.0"/>`, ErrMalformed, new(*SyntaxError), 400},
		{"wrong protocol", `<request protocol="2.0">` + validApp + `</request>`, ErrProtocol, new(*ProtocolError), 400},
		{"missing protocol", `<request>` + validApp + `</request>`, ErrProtocol, new(*ProtocolError), 400},
		{"doctype with entities", `<?xml version="1.0"?><!DOCTYPE request [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><request protocol="3.0"><app appid="&b;" version="1.2.3"/></request>`, ErrEntity, new(*SyntaxError), 400},
		{"external entity", `<?xml version="1.0"?><!DOCTYPE request [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><request protocol="3.0"><app appid="&xxe;"/></request>`, ErrEntity, new(*SyntaxError), 400},
		{"bare doctype", `<!DOCTYPE request><request protocol="3.0"/>`, ErrEntity, new(*SyntaxError), 400},
		{"custom entity without doctype", request(`<app appid="&custom;" version="1.2.3"/>`), ErrEntity, new(*SyntaxError), 400},
		{"bad character reference", request(`<app appid="&#xZZ;" version="1.2.3"/>`), ErrMalformed, new(*SyntaxError), 400},
		{"forbidden character reference", request(`<app appid="&#0;" version="1.2.3"/>`), ErrMalformed, new(*SyntaxError), 400},
		{"huge attribute", request(`<app appid="` + strings.Repeat("a", DefaultMaxAttrBytes+1) + `" version="1.2.3"/>`), ErrLimit, new(*LimitError), 400},
		{"many attributes", request(`<app` + manyAttrs(DefaultMaxAttrs+1) + `/>`), ErrLimit, new(*LimitError), 400},
		{"deep nesting", request(strings.Repeat("<x>", 50) + strings.Repeat("</x>", 50)), ErrLimit, new(*LimitError), 400},
		{"very deep nesting", request(strings.Repeat("<x>", 100000)), ErrLimit, new(*LimitError), 400},
		{"too many apps", request(strings.Repeat(validApp, DefaultMaxApps+1)), ErrLimit, new(*LimitError), 400},
		{"too many events", request(`<app appid="a" version="1.2.3">` + strings.Repeat(`<event eventtype="3" eventresult="1"/>`, DefaultMaxEvents+1) + `</app>`), ErrLimit, new(*LimitError), 400},
		{"too many children", request(`<os>` + strings.Repeat(`<x/>`, DefaultMaxChildren+1) + `</os>`), ErrLimit, new(*LimitError), 400},
		{"too many elements", request(strings.Repeat(`<app appid="a" version="1.2.3">`+strings.Repeat(`<x/>`, 200)+`</app>`, 30)), ErrLimit, new(*LimitError), 400},
		{"oversized body", request(validApp + strings.Repeat(" ", DefaultMaxBodyBytes)), ErrBodyTooLarge, new(*LimitError), 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := ParseRequest(strings.NewReader(tt.body))
			if err == nil {
				t.Fatalf("ParseRequest accepted it: %+v", req)
			}
			if req != nil {
				t.Errorf("ParseRequest returned a request with the error")
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("error %q does not wrap %v", err, tt.sentinel)
			}
			if tt.sentinel != ErrEntity && errors.Is(err, ErrEntity) {
				t.Errorf("error %q claims an entity problem", err)
			}
			if !errors.As(err, tt.typed) {
				t.Errorf("error %q (%T) is not a %T", err, err, tt.typed)
			}
			if got := HTTPStatus(err); got != tt.status {
				t.Errorf("HTTPStatus = %d, want %d", got, tt.status)
			}
			if !strings.HasPrefix(err.Error(), "omaha: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func manyAttrs(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, ` a%d="x"`, i)
	}
	return b.String()
}

func TestParseRequestAccepts(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"no header", `<request protocol="3.0">` + validApp + `</request>`},
		{"header and comments", `<?xml version="1.0" encoding="utf-8"?><!-- c --><request protocol="3.0">` + validApp + `</request><!-- trailing -->` + "\n"},
		{"predefined entities", request(`<app appid="a" version="1.2.3" machinealias="a &lt;&amp;&gt; &quot;b&apos; &#65;"/>`)},
		{"unknown elements and attributes", request(`<future x="1"><deeper/></future>` + strings.Replace(validApp, "<ping", `<extension y="2"/><ping`, 1))},
		{"exactly at the body cap", padTo(request(validApp), DefaultMaxBodyBytes)},
		{"exactly max apps", request(strings.Repeat(validApp, DefaultMaxApps))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := ParseRequest(strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if err := req.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// padTo appends whitespace so the document is exactly n bytes.
func padTo(s string, n int) string { return s + strings.Repeat(" ", n-len(s)) }

func TestParseRequestEntityValues(t *testing.T) {
	req, err := ParseRequest(strings.NewReader(request(`<app appid="a" version="1.2.3" machinealias="a &lt;&amp;&gt; &#65;"/>`)))
	if err != nil {
		t.Fatal(err)
	}
	if got := req.Apps[0].MachineAlias; got != "a <&> A" {
		t.Errorf("machinealias = %q", got)
	}
}

func TestParseRequestMaxBytesReader(t *testing.T) {
	// A server that caps the body with http.MaxBytesReader gets ErrBodyTooLarge too.
	var got error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, got = ParseRequest(http.MaxBytesReader(w, r.Body, 100))
	}))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "text/xml", strings.NewReader(request(validApp)))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !errors.Is(got, ErrBodyTooLarge) || HTTPStatus(got) != http.StatusRequestEntityTooLarge {
		t.Errorf("error = %v, want ErrBodyTooLarge", got)
	}
}

func TestLimitsOverride(t *testing.T) {
	body := request(validApp + validApp)
	if _, err := (Limits{MaxApps: 1}).ParseRequest(strings.NewReader(body)); !errors.Is(err, ErrLimit) {
		t.Errorf("MaxApps 1: error = %v, want ErrLimit", err)
	}
	if _, err := (Limits{MaxBodyBytes: 64}).ParseRequest(strings.NewReader(body)); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("MaxBodyBytes 64: error = %v, want ErrBodyTooLarge", err)
	}
	if _, err := (Limits{MaxApps: 2}).ParseRequest(strings.NewReader(body)); err != nil {
		t.Errorf("MaxApps 2: %v", err)
	}
	if d := DefaultLimits(); d.MaxBodyBytes != 1<<20 || d.MaxEvents != DefaultMaxEvents {
		t.Errorf("DefaultLimits = %+v", d)
	}
}

func TestParseResponseBadInput(t *testing.T) {
	urls := strings.Repeat(`<urls><url codebase="http://a/"/></urls>`, 3)
	tests := []struct {
		name     string
		body     string
		sentinel error
	}{
		{"request as response", request(validApp), ErrMalformed},
		{"wrong protocol", `<response protocol="4.0"/>`, ErrProtocol},
		{"bad size", `<response protocol="3.0"><app appid="a" status="ok"><updatecheck status="ok"><manifest version="1.2.3"><packages><package name="p" size="-1"/></packages></manifest></updatecheck></app></response>`, ErrMalformed},
		{"doctype", `<!DOCTYPE response [<!ENTITY x "y">]><response protocol="3.0"/>`, ErrEntity},
		{"merged urls over the limit", `<response protocol="3.0"><app appid="a" status="ok"><updatecheck status="ok">` + urls + `</updatecheck></app></response>`, ErrLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (Limits{MaxChildren: 2}).ParseResponse(strings.NewReader(tt.body))
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("error = %v, want %v", err, tt.sentinel)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		app    string // one <app>, or a whole body when it starts with "<request"
		field  string // "" means valid
		status AppStatus
	}{
		{"valid", validApp, "", ""},
		{"no app", `<request protocol="3.0"/>`, "request/app", AppStatusInternal},
		{"missing appid", `<app version="1.2.3"/>`, "app@appid", AppStatusInvalidAppID},
		{"appid with spaces", `<app appid="a b" version="1.2.3"/>`, "app@appid", AppStatusInvalidAppID},
		{"missing version", `<app appid="a"/>`, "app@version", AppStatusInvalidVersion},
		{"invalid version", `<app appid="a" version="4081.x.0"/>`, "app@version", AppStatusInvalidVersion},
		{"version with leading zero", `<app appid="a" version="4081.02.0"/>`, "app@version", AppStatusInvalidVersion},
		{"nightly version", `<app appid="a" version="4081.2.0+nightly-20240101"/>`, "", ""},
		{"track with slash", `<app appid="a" version="1.2.3" track="../etc"/>`, "app@track", AppStatusInternal},
		{"machineid too long", `<app appid="a" version="1.2.3" machineid="` + strings.Repeat("a", 129) + `"/>`, "app@machineid", AppStatusInternal},
		{"bad aleph", `<app appid="a" version="1.2.3" alephversion="x"/>`, "app@alephversion", AppStatusInternal},
		{"bad previousversion", `<app appid="a" version="1.2.3"><event eventtype="3" eventresult="2" previousversion="yesterday"/></app>`, "event@previousversion", AppStatusInternal},
		{"zero previousversion", `<app appid="a" version="1.2.3"><event eventtype="3" eventresult="2" previousversion="0.0.0.0"/></app>`, "", ""},
		{"negative event type", `<app appid="a" version="1.2.3"><event eventtype="-3" eventresult="2"/></app>`, "event@eventtype", AppStatusInternal},
		{"unknown event type accepted", `<app appid="a" version="1.2.3"><event eventtype="4242" eventresult="77"/></app>`, "", ""},
		{"control in detail", `<app appid="a" version="1.2.3"><event eventtype="3" eventresult="0" sy_detail="a&#10;b"/></app>`, "event@sy_detail", AppStatusInternal},
		{"bidi override in alias", `<app appid="a" version="1.2.3" machinealias="web-&#x202E;3bew"/>`, "app@machinealias", AppStatusInternal},
		{"bidi isolate in alias", `<app appid="a" version="1.2.3" machinealias="web&#x2067;1"/>`, "app@machinealias", AppStatusInternal},
		{"C1 control in alias", `<app appid="a" version="1.2.3" machinealias="web&#x9B;1"/>`, "app@machinealias", AppStatusInternal},
		{"unicode alias accepted", `<app appid="a" version="1.2.3" machinealias="Rechenzentrum Süd 3"/>`, "", ""},
		{"bidi override in detail", `<app appid="a" version="1.2.3"><event eventtype="3" eventresult="0" sy_detail="ok&#x202D;"/></app>`, "event@sy_detail", AppStatusInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.app
			if !strings.HasPrefix(body, "<request") {
				body = request(body)
			}
			req, err := ParseRequest(strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			err = req.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate error = %v, want a ValidationError", err)
			}
			if ve.Field != tt.field || ve.Status() != tt.status {
				t.Errorf("field %q status %q, want %q %q (%v)", ve.Field, ve.Status(), tt.field, tt.status, err)
			}
			if HTTPStatus(err) != http.StatusBadRequest {
				t.Errorf("HTTPStatus = %d", HTTPStatus(err))
			}
		})
	}
}

func TestValidateProtocol(t *testing.T) {
	r := NewPingRequest(flatcarHost)
	r.Protocol = "2.0"
	var pe *ProtocolError
	if err := r.Validate(); !errors.As(err, &pe) || pe.Got != "2.0" || !errors.Is(err, ErrProtocol) {
		t.Errorf("Validate = %v, want ProtocolError", err)
	}
}

func TestOfferValidate(t *testing.T) {
	good := func() *Offer {
		return &Offer{
			Version: "4081.2.0",
			URLs:    []string{"https://updates.example.com/amd64-usr/4081.2.0"},
			Package: Package{Name: "payload.sy", Size: 1 << 20, HashSHA256: strings.Repeat("ab", 32)},
			SHA256:  make([]byte, 32),
		}
	}
	tests := []struct {
		name  string
		edit  func(o *Offer)
		field string
	}{
		{"valid", func(o *Offer) {}, ""},
		{"bad version", func(o *Offer) { o.Version = "latest" }, "manifest@version"},
		{"no url", func(o *Offer) { o.URLs = nil }, "urls/url"},
		{"empty url", func(o *Offer) { o.URLs = []string{""} }, "url@codebase"},
		{"ftp url", func(o *Offer) { o.URLs = []string{"ftp://a/"} }, "url@codebase"},
		{"no host", func(o *Offer) { o.URLs = []string{"http:///x"} }, "url@codebase"},
		{"path in name", func(o *Offer) { o.Package.Name = "../../etc/passwd" }, "package@name"},
		{"dotdot name", func(o *Offer) { o.Package.Name = ".." }, "package@name"},
		{"zero size", func(o *Offer) { o.Package.Size = 0 }, "package@size"},
		{"short sha256", func(o *Offer) { o.SHA256 = make([]byte, 20) }, "action@sha256"},
		{"bad hex", func(o *Offer) { o.Package.HashSHA256 = "xyz" }, "package@hash_sha256"},
		{"bad extra", func(o *Offer) { o.Extra = []Package{{Name: "a/b", Size: 1}} }, "package@name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good()
			tt.edit(o)
			err := o.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				a := NewAppResponse(&App{AppID: "a", UpdateCheck: &UpdateCheck{}})
				if err := a.SetOffer(o); err != nil {
					t.Fatal(err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("Validate = %v, want field %s", err, tt.field)
			}
			a := NewAppResponse(&App{AppID: "a", UpdateCheck: &UpdateCheck{}})
			if err := a.SetOffer(o); err == nil || a.UpdateCheck.Status != UpdateStatusNoUpdate {
				t.Errorf("SetOffer accepted an invalid offer")
			}
		})
	}
}

func TestOfferPayloadURLs(t *testing.T) {
	o := &Offer{URLs: []string{"https://a/x/", "http://b/y"}, Package: Package{Name: "p.gz"}}
	got := o.PayloadURLs()
	want := []string{"https://a/x/p.gz", "http://b/y/p.gz"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("PayloadURLs = %v, want %v", got, want)
	}
}

func TestResponseOfferErrors(t *testing.T) {
	base := `<response protocol="3.0"><daystart elapsed_seconds="0"/><app appid="{E96281A6-D1AF-4BDE-9A0A-97B76E56DC57}" status="ok"><updatecheck status="ok">%s</updatecheck></app></response>`
	manifest := `<manifest version="4081.2.0"><packages><package name="p" size="10" required="true"/></packages><actions>%s</actions></manifest>`
	okAction := `<action event="postinstall" sha256="47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="/>`
	url := `<urls><url codebase="https://a/"/></urls>`
	tests := []struct {
		name  string
		inner string
		field string // "" means a valid offer
	}{
		{"valid, appid case-insensitive", url + fmt.Sprintf(manifest, okAction), ""},
		{"no manifest", url, "updatecheck/manifest"},
		{"no url", fmt.Sprintf(manifest, okAction), "urls/url"},
		{"no postinstall", url + fmt.Sprintf(manifest, `<action event="preinstall"/>`), "manifest/actions/action"},
		{"sha256 not base64", url + fmt.Sprintf(manifest, `<action event="postinstall" sha256="!!"/>`), "action@sha256"},
		{"sha256 wrong length", url + fmt.Sprintf(manifest, `<action event="postinstall" sha256="AAAA"/>`), "action@sha256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := ParseResponse(strings.NewReader(fmt.Sprintf(base, tt.inner)))
			if err != nil {
				t.Fatal(err)
			}
			o, err := resp.Offer(FlatcarAppID)
			if tt.field == "" {
				if err != nil || o == nil {
					t.Fatalf("Offer = %v, %v", o, err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("Offer error = %v, want field %s", err, tt.field)
			}
		})
	}
	resp, _ := ParseResponse(strings.NewReader(fmt.Sprintf(base, "")))
	if _, err := resp.Offer("{00000000-0000-0000-0000-000000000000}"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Offer for a missing app = %v, want ErrInvalid", err)
	}
}

func TestMarshalEscapes(t *testing.T) {
	r := NewEventRequest(flatcarHost, EventError(ErrorCodeError, `boom <"&'> done`))
	r.Apps[0].MachineAlias = `"><evil/>`
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "<evil/>") {
		t.Fatalf("attribute not escaped: %s", b)
	}
	if !strings.HasPrefix(string(b), `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Errorf("no XML header: %s", b)
	}
	back, err := ParseRequest(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if back.Apps[0].MachineAlias != `"><evil/>` || back.Apps[0].Events[0].Detail != `boom <"&'> done` {
		t.Errorf("round trip changed values: %+v", back.Apps[0])
	}
}

func TestNewResponseDayStart(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 30, 15, 0, time.UTC)
	r := NewResponse("switchyard", now)
	if r.DayStart.ElapsedSeconds != 10*3600+30*60+15 || r.Protocol != "3.0" || r.Server != "switchyard" {
		t.Errorf("NewResponse = %+v", r)
	}
}

func TestCheckDisplayText(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"empty", "", true},
		{"plain", "web-01", true},
		{"accents and spaces", "Rechenzentrum Süd 3", true},
		{"right-to-left script", "שרת", true},
		{"tab", "a\tb", false},
		{"newline", "a\nb", false},
		{"DEL", "a\x7fb", false},
		{"C1 CSI", "a\u009bb", false},
		{"LRE", "a\u202ab", false},
		{"RLO", "host-\u202egnp.exe", false},
		{"PDF", "a\u202cb", false},
		{"LRI", "a\u2066b", false},
		{"PDI", "a\u2069b", false},
		{"RLM", "a\u200fb", false},
		{"ALM", "a\u061cb", false},
		{"zero width space", "a\u200bb", false},
		{"zero width joiner", "a\u200db", false},
		{"line separator", "a\u2028b", false},
		{"invalid UTF-8", "a\xffb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckDisplayText(tt.in); (err == nil) != tt.ok {
				t.Errorf("CheckDisplayText(%q) = %v, want ok %v", tt.in, err, tt.ok)
			}
		})
	}
}

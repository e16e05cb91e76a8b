package omaha

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSend(t *testing.T) {
	noupdate := `<response protocol="3.0"><daystart elapsed_seconds="0"/><app appid="` + FlatcarAppID + `" status="ok"><ping status="ok"/><updatecheck status="noupdate"/><event status="ok"/></app></response>`
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		wantErr  error // sentinel, or nil
		wantHTTP int   // status in an *HTTPError
	}{
		{"noupdate", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, noupdate) }, nil, 0},
		{"server error", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "x", http.StatusServiceUnavailable) }, nil, 503},
		{"not found", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, nil, 404},
		{"garbage", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>") }, ErrMalformed, 0},
		{"endless body", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `<response protocol="3.0">`)
			chunk := strings.Repeat("<!-- padding -->", 4096)
			for i := 0; i < 40; i++ { // 2.5 MiB, past the cap
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
			}
		}, ErrBodyTooLarge, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *http.Request
			var body string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r
				b, _ := io.ReadAll(r.Body)
				body = string(b)
				tt.handler(w, r)
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := Send(ctx, srv.Client(), srv.URL+"/v1/update/", NewUpdateCheckRequest(flatcarHost, false, EventRebooted("")), Limits{})
			if got.Method != http.MethodPost || got.URL.Path != "/v1/update/" || got.Header.Get("Content-Type") != "text/xml" {
				t.Errorf("request %s %s %q", got.Method, got.URL.Path, got.Header.Get("Content-Type"))
			}
			if _, perr := ParseRequest(strings.NewReader(body)); perr != nil {
				t.Errorf("server got an unparsable body: %v", perr)
			}
			switch {
			case tt.wantHTTP != 0:
				var he *HTTPError
				if !errors.As(err, &he) || he.StatusCode != tt.wantHTTP || he.ErrorCode() != ErrorCode(2000+tt.wantHTTP) {
					t.Fatalf("error = %v, want HTTP %d", err, tt.wantHTTP)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if _, err := resp.Offer(FlatcarAppID); !errors.Is(err, ErrNoUpdate) {
					t.Errorf("Offer = %v, want ErrNoUpdate", err)
				}
			}
		})
	}
}

func TestSendUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := Send(context.Background(), &http.Client{Timeout: time.Second}, url, NewPingRequest(flatcarHost), Limits{})
	if err == nil || !strings.HasPrefix(err.Error(), "omaha: posting") {
		t.Errorf("error = %v", err)
	}
}

func TestHTTPErrorCode(t *testing.T) {
	tests := []struct {
		status int
		want   ErrorCode
	}{{404, 2404}, {500, 2500}, {1200, 2999}, {-1, 2000}}
	for _, tt := range tests {
		if got := HTTPErrorCode(tt.status); got != tt.want {
			t.Errorf("HTTPErrorCode(%d) = %d, want %d", tt.status, got, tt.want)
		}
	}
}

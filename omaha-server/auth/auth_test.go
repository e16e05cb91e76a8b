package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/omaha-server/auth"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

func TestAuthorize(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	admin, adminHash, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	viewer, viewerHash, _ := auth.NewToken()
	if admin == viewer || !strings.HasPrefix(admin, auth.Prefix) || len(admin) < 40 {
		t.Fatalf("tokens %q %q", admin, viewer)
	}
	s.CreateToken(ctx, store.Token{Hash: adminHash, Role: store.RoleAdmin})
	s.CreateToken(ctx, store.Token{Hash: viewerHash, Role: store.RoleViewer})
	tests := []struct {
		name, method, header string
		want                 error
	}{
		{"admin writes", "POST", "Bearer " + admin, nil},
		{"admin reads", "GET", "Bearer " + admin, nil},
		{"viewer reads", "GET", "bearer " + viewer, nil},
		{"viewer writes", "POST", "Bearer " + viewer, auth.ErrForbidden},
		{"viewer deletes", "DELETE", "Bearer " + viewer, auth.ErrForbidden},
		{"no header", "GET", "", auth.ErrUnauthenticated},
		{"basic", "GET", "Basic " + admin, auth.ErrUnauthenticated},
		{"unknown", "GET", "Bearer " + auth.Prefix + "nope", auth.ErrUnauthenticated},
		{"hash as token", "GET", "Bearer " + adminHash, auth.ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/api/v1/apps", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			_, err := auth.Authorize(ctx, s, r)
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if !auth.Allowed(store.RoleViewer, http.MethodHead) || auth.Allowed("root", http.MethodGet) {
		t.Error("Allowed is wrong")
	}
}

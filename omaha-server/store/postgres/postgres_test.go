package postgres_test

import (
	"context"
	"os"
	"testing"

	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/pgtest"
	"github.com/switchyard-os/switchyard/omaha-server/store/postgres"
	"github.com/switchyard-os/switchyard/omaha-server/store/storetest"
)

var cluster = pgtest.NewShared(pgtest.Options{})

func TestMain(m *testing.M) {
	code := m.Run()
	cluster.Stop()
	os.Exit(code)
}

func open(t *testing.T, url string) *postgres.Store {
	s, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, cluster.DB(t)) })
}

func TestTwoProcessesMigrateOneDatabase(t *testing.T) {
	url := cluster.DB(t)
	a, b := open(t, url), open(t, url)
	ctx := context.Background()
	if _, err := a.CreateApp(ctx, store.App{ID: "x", Name: "X"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetApp(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	ga, _ := a.Generation(ctx)
	gb, _ := b.Generation(ctx)
	if ga != gb {
		t.Errorf("generations differ: %d, %d", ga, gb)
	}
}

func TestBadURL(t *testing.T) {
	if _, err := postgres.Open(context.Background(), "postgres://127.0.0.1:1/none?connect_timeout=1", postgres.Options{}); err == nil {
		t.Fatal("no error for an unreachable database")
	}
}

package redislimit_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/concpatterns/conc/httplimit"
	"github.com/concpatterns/conc/redislimit"
	"github.com/concpatterns/conc/redislimit/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// Every replica of a service builds the same Limiter over the same Redis:
// each API key gets 10 requests a second with bursts of 20 across all of
// them. The middleware adds the rate-limit headers and answers 429.
func Example() {
	client, stop := exampleRedis()
	defer stop()

	lim := redislimit.New(client, "api:", 10, 20,
		redislimit.OnFailure(redislimit.Fallback(0.25)), // 4 replicas
		redislimit.Batching(4))
	mw := httplimit.New(lim, httplimit.Key(httplimit.Header("X-API-Key")))
	handler := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	}))
	_ = handler // http.ListenAndServe(":8080", handler)

	ctx := context.Background()
	for range 20 {
		lim.Allow(ctx, "key-1")
	}
	d, err := lim.Allow(ctx, "key-1")
	fmt.Println(d.Allowed, d.Path, err, d.RetryAfter > 0 && d.RetryAfter <= 100*time.Millisecond)
	d, _ = lim.Allow(ctx, "key-1")
	fmt.Println(d.Allowed, d.Path)
	// Output:
	// false redis <nil> true
	// false cache
}

// exampleRedis starts a throwaway redis-server on a unix socket; a real
// service would use redis.NewClient(&redis.Options{Addr: "redis:6379"}) or
// a cluster client.
func exampleRedis() (*redis.Client, func()) {
	dir, _ := os.MkdirTemp("", "example")
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command(redistest.Binary(), "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no", "--dir", dir)
	cmd.SysProcAttr = redistest.SysProcAttr()
	if err := cmd.Start(); err != nil {
		panic("redis-server is needed: apt-get install redis-server")
	}
	client := redis.NewClient(&redis.Options{Network: "unix", Addr: sock})
	for client.Ping(context.Background()).Err() != nil {
		time.Sleep(10 * time.Millisecond)
	}
	return client, func() {
		client.Close()
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	}
}

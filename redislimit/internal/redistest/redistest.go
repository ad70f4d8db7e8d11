// Package redistest starts a real redis-server for tests: on a unix socket in
// the test's temporary directory, with persistence off, stopped when the
// test ends. Without /usr/bin/redis-server (or redis-server on PATH) the test
// is skipped with an install hint, unless CI=true, where it fails.
package redistest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A Server is one redis-server process that can be killed and started again
// on the same socket.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	Sock string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Missing is the message of a test that cannot start a server.
const Missing = "redis-server not found; install it with `apt-get install redis-server`"

// Binary returns the path of redis-server (on PATH or /usr/bin), or "" if it
// is not installed.
func Binary() string {
	if bin, err := exec.LookPath("redis-server"); err == nil {
		return bin
	}
	if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
		return "/usr/bin/redis-server"
	}
	return ""
}

// Start starts a server for t and stops it at t's cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(Missing)
		}
		t.Skip(Missing)
	}
	// A unix socket path must stay under 108 bytes; t.TempDir of a test
	// with a long name can be longer, and then a short directory of our
	// own stands in for it.
	dir := t.TempDir()
	if len(dir) > 90 {
		d, err := os.MkdirTemp("", "redis")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	s := &Server{t: t, bin: bin, dir: dir, Sock: filepath.Join(dir, "redis.sock")}
	t.Cleanup(s.Kill)
	s.Restart()
	return s
}

// Client returns a new client of the server, closed at the test's cleanup.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: s.Sock, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Kill stops the server at once (SIGKILL) and waits for it to exit.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
	os.Remove(s.Sock)
}

// Restart starts the server (again) and waits until it answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	cmd := exec.Command(s.bin, "--port", "0", "--unixsocket", s.Sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--loglevel", "warning")
	cmd.SysProcAttr = SysProcAttr()
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd = cmd
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: s.Sock, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server did not answer on %s: %v", s.Sock, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

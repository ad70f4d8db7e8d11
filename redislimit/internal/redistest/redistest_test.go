package redistest

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestServerDiesWithTest starts a child test binary that starts a server and
// then dies by SIGKILL, so no cleanup runs: the server must not outlive it
// (an orphaned redis-server kept, among others, an inherited flock fd open).
func TestServerDiesWithTest(t *testing.T) {
	if os.Getenv("REDISTEST_CHILD") == "1" {
		s := Start(t)
		s.mu.Lock()
		pid := s.cmd.Process.Pid
		s.mu.Unlock()
		os.Stdout.WriteString("pid " + strconv.Itoa(pid) + "\n")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	if Binary() == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(Missing)
		}
		t.Skip(Missing)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServerDiesWithTest$")
	cmd.Env = append(os.Environ(), "REDISTEST_CHILD=1")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	pid := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "pid "); ok {
			pid, err = strconv.Atoi(p)
			require.NoError(t, err)
		}
	}
	cmd.Wait()
	require.NotZero(t, pid, "the child printed no server pid")
	alive := func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return false
		}
		// A zombie (state Z) waiting for a reaper is dead already.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		return len(f) > 0 && f[0] != "Z"
	}
	for deadline := time.Now().Add(10 * time.Second); alive(); {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("redis-server %d outlived the test process that started it", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

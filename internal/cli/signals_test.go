package cli_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/layerslim/layerslim/internal/testenv"
)

// SIGINT and SIGTERM end a run whose read is blocked in the kernel (batch
// reading its plan from a stdin that never ends), with "interrupted", exit 1;
// a FIFO where index.json should be is refused at once rather than read.
func TestSignalEndsBlockedRead(t *testing.T) {
	bin := testenv.BuildLayerslim(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			// A process killed by the signal itself got it before main
			// installed its handler (a slow start on a loaded machine):
			// try again with a longer head start; three times is a bug.
			for _, headStart := range []time.Duration{300 * time.Millisecond, time.Second, 4 * time.Second} {
				code, state, stderr := interruptBlockedBatch(t, bin, sig, headStart)
				if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == sig {
					t.Logf("killed by %s after %v, before its handler was installed; retrying", sig, headStart)
					continue
				}
				if code != 1 || !strings.Contains(stderr, "interrupted") {
					t.Errorf("exit %d (%v), want 1 with \"interrupted\":\n%s", code, state, stderr)
				}
				return
			}
			t.Errorf("killed by %s every time: the handler is never installed", sig)
		})
	}
	t.Run("FIFO as index.json", func(t *testing.T) {
		dir := t.TempDir()
		if err := syscall.Mkfifo(filepath.Join(dir, "index.json"), 0o644); err != nil {
			t.Skip(err)
		}
		os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
		cmd := exec.Command(bin, "analyze", "oci:"+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.Start()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
			if !strings.Contains(stderr.String(), "index.json: not a regular file (a FIFO)") || cmd.ProcessState.ExitCode() != 1 {
				t.Errorf("exit %d:\n%s", cmd.ProcessState.ExitCode(), stderr.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("analyze blocked on the FIFO")
		}
	})
}

// interruptBlockedBatch starts batch reading its plan from a stdin that
// never ends, sends sig headStart later and returns how the process ended.
func interruptBlockedBatch(t *testing.T, bin string, sig syscall.Signal, headStart time.Duration) (int, *os.ProcessState, string) {
	t.Helper()
	cmd := exec.Command(bin, "batch", "-", "--cache-dir", t.TempDir())
	stdin, err := cmd.StdinPipe() // held open: the read blocks
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(headStart)
	cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("still running 15s after %s:\n%s", sig, stderr.String())
	}
	return cmd.ProcessState.ExitCode(), cmd.ProcessState, stderr.String()
}

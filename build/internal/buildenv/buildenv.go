// Package buildenv holds what layerslim's build programs (build/image,
// build/release) share: their main function (Main, UsageError), where the
// source is, which commit and time it is built from, and the one way a
// release binary is compiled.
package buildenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Source is the source tree a build reads.
type Source struct {
	Root   string    // the module's directory
	Commit string    // the commit checked out
	Time   time.Time // SOURCE_DATE_EPOCH, or else the commit's time
}

// Find locates the module from the working directory and reads its commit
// (unless commit is given) and the source date.
func Find(ctx context.Context, commit string) (*Source, error) {
	gomod, err := Output(ctx, "", "go", "env", "GOMOD")
	if err != nil || gomod == "" || gomod == os.DevNull {
		return nil, fmt.Errorf("finding the module: run from layerslim's source tree (%v)", err)
	}
	s := &Source{Root: filepath.Dir(gomod), Commit: commit}
	if s.Commit == "" {
		if s.Commit, err = Output(ctx, s.Root, "git", "rev-parse", "HEAD"); err != nil {
			return nil, fmt.Errorf("finding the commit (or give --commit): %w", err)
		}
	}
	epoch := os.Getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		if epoch, err = Output(ctx, s.Root, "git", "log", "-1", "--format=%ct", s.Commit); err != nil {
			return nil, fmt.Errorf("finding the commit time (or set SOURCE_DATE_EPOCH): %w", err)
		}
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("SOURCE_DATE_EPOCH %q: not a number of seconds", epoch)
	}
	s.Time = time.Unix(sec, 0).UTC()
	return s, nil
}

// Output runs a command in dir and returns its stdout, trimmed.
func Output(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// Compile builds ./cmd/layerslim for goos/goarch into out: CGO off,
// -trimpath, no build id, no symbol table or DWARF, the version and the
// commit set by -X (VCS stamping is off: a worktree or a source archive
// gives the go command none to read), so the bytes depend on the source,
// the target and the Go version alone.
func (s *Source) Compile(ctx context.Context, goos, goarch, variant, version, out string) error {
	pkg := "github.com/layerslim/layerslim/internal/cli"
	ldflags := fmt.Sprintf("-s -w -buildid= -X %s.Version=%s -X %s.Commit=%s", pkg, version, pkg, s.Commit)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags="+ldflags, "-o", out, "./cmd/layerslim")
	cmd.Dir = s.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOFLAGS=", "GOWORK=off")
	if goarch == "arm" && variant != "" {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(variant, "v"))
	}
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build for %s/%s: %w\n%s", goos, goarch, err, msg)
	}
	return nil
}

package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/mod/module"
)

// Commit is the commit layerslim was built from, for builds whose build
// info has none (a git worktree, a source archive). Release builds set it
// with -ldflags "-X github.com/layerslim/layerslim/internal/cli.Commit=…".
var Commit = ""

// buildInfo is what `layerslim version` prints.
type buildInfo struct {
	Version  string // layerslim's Version
	Module   string // the module's version as the go command recorded it: v1.2.0, a pseudo-version, (devel)
	Commit   string // the VCS revision, "" when unknown
	Modified bool   // built from a tree with uncommitted changes
	Time     string // the commit's time, RFC 3339
	Go       string
	Platform string
}

// readBuildInfo reads what the go command recorded in the binary. A build
// in a clone records the commit (vcs.revision); `go install
// module@version` records no VCS data, but a pseudo-version names the
// commit too.
func readBuildInfo(bi *debug.BuildInfo, ok bool) buildInfo {
	out := buildInfo{Version: Version, Commit: Commit, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if !ok || bi == nil {
		return out
	}
	out.Go = bi.GoVersion
	out.Module = bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			out.Commit = s.Value
		case "vcs.time":
			out.Time = s.Value
		case "vcs.modified":
			out.Modified = s.Value == "true"
		case "GOOS":
			out.Platform = s.Value + out.Platform[strings.IndexByte(out.Platform, '/'):]
		case "GOARCH":
			out.Platform = out.Platform[:strings.IndexByte(out.Platform, '/')+1] + s.Value
		}
	}
	if out.Commit == "" && module.IsPseudoVersion(out.Module) {
		if rev, err := module.PseudoVersionRev(out.Module); err == nil {
			out.Commit = rev
		}
		if t, err := module.PseudoVersionTime(out.Module); err == nil {
			out.Time = t.UTC().Format("2006-01-02T15:04:05Z")
		}
	}
	return out
}

func (b buildInfo) write(w io.Writer) error {
	commit := b.Commit
	if commit == "" {
		commit = "unknown"
	}
	if b.Modified {
		commit += " (modified)"
	}
	lines := [][2]string{{"commit", commit}}
	if b.Time != "" {
		lines = append(lines, [2]string{"commit time", b.Time})
	}
	if b.Module != "" {
		lines = append(lines, [2]string{"module", "github.com/layerslim/layerslim " + b.Module})
	}
	lines = append(lines, [2]string{"go", b.Go}, [2]string{"platform", b.Platform})
	var s strings.Builder
	fmt.Fprintf(&s, "layerslim %s\n", b.Version)
	for _, l := range lines {
		fmt.Fprintf(&s, "  %-12s %s\n", l[0]+":", l[1])
	}
	_, err := io.WriteString(w, s.String())
	return err
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print layerslim's version, the commit and the Go version it was built from",
		Long: `version prints layerslim's version (which output images record in their
dev.layerslim.version annotation), the commit it was built from (from the
build's VCS data, or the pseudo-version of "go install …@commit"), and the
Go version and platform.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			bi, ok := debug.ReadBuildInfo()
			return readBuildInfo(bi, ok).write(cmd.OutOrStdout())
		},
	}
}

package cli

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadBuildInfo(t *testing.T) {
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want buildInfo
	}{
		{
			name: "a build in a clone",
			bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
				{Key: "GOOS", Value: "darwin"}, {Key: "GOARCH", Value: "arm64"},
				{Key: "vcs.revision", Value: "26a6d0c0123456789abcdef0123456789abcdef0"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
				{Key: "vcs.modified", Value: "true"},
			}},
			want: buildInfo{Version: Version, Module: "(devel)", Commit: "26a6d0c0123456789abcdef0123456789abcdef0", Modified: true,
				Time: "2026-12-01T10:00:00Z", Go: "go1.26.8", Platform: "darwin/arm64"},
		},
		{
			name: "go install module@commit",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.1.1-0.20261201100000-26a6d0c01234"}},
			want: buildInfo{Version: Version, Module: "v0.1.1-0.20261201100000-26a6d0c01234", Commit: "26a6d0c01234",
				Time: "2026-12-01T10:00:00Z", Go: "go1.26.8"},
		},
		{
			name: "go install module@v0.2.0",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.2.0"}},
			want: buildInfo{Version: Version, Module: "v0.2.0", Go: "go1.26.8"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := readBuildInfo(tc.bi, true)
			if tc.want.Platform == "" {
				tc.want.Platform = got.Platform // the running one
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	cmd := New()
	var out bytes.Buffer
	cmd.SetArgs([]string{"version"})
	cmd.SetOut(&out)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"layerslim " + Version + "\n", "  commit:", "  go:          go1."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("version output lacks %q:\n%s", want, out.String())
		}
	}
}

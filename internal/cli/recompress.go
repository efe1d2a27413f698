package cli

import (
	"fmt"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/internal/imagewalk"
)

// pipelineOptions are the flags every command that writes an image shares.
type pipelineOptions struct {
	compression string
	level       int
	jobs        int
	platforms   []string
	insecure    bool
	report      string
	force       bool
	overwrite   bool
	progress    string
	signedFlags
	limits limitOptions
	variantOptions

	codec compress.Codec
	plats []v1.Platform
}

func (o *pipelineOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.compression, "compression", "zstd", "output layer compression: zstd, zstd:chunked, gzip or none")
	f.IntVar(&o.level, "level", 0, "compression level (default 3 for zstd, 6 for gzip)")
	f.IntVar(&o.jobs, "jobs", runtime.GOMAXPROCS(0), "layers processed at once, and zstd/gzip frames compressed at once (at most the CPUs)")
	f.StringSliceVar(&o.platforms, "platform", nil, "only these platforms of an index, as os/arch[/variant],…")
	f.BoolVar(&o.insecure, "insecure", false, "allow plain HTTP and unverified TLS to registries")
	f.StringVar(&o.report, "report", "", "write a JSON report to this file")
	f.BoolVar(&o.force, "force", false, "re-encode layers that are already in the target compression")
	f.BoolVar(&o.overwrite, "overwrite", false, "allow DST to name the same image as SRC")
	f.StringVar(&o.progress, "progress", "auto", "progress display: auto, tty, plain or none")
	o.signedFlags.addFlags(f)
	o.limits.addLayerFlag(cmd)
	o.variantOptions.addFlags(cmd)
}

func (o *pipelineOptions) validate() error {
	c, err := o.variantOptions.parseCompression(o.compression)
	if err != nil {
		return &UsageError{Err: fmt.Errorf("--compression: %w", err)}
	}
	o.codec = c
	if o.level != 0 {
		if err := compress.ValidLevel(c, o.level); err != nil {
			return &UsageError{Err: fmt.Errorf("--level: %w", err)}
		}
	}
	if err := o.variantOptions.validate(c); err != nil {
		return err
	}
	if o.jobs < 1 {
		return usagef("--jobs must be at least 1")
	}
	plats, err := imagewalk.ParsePlatforms(o.platforms)
	if err != nil {
		return &UsageError{Err: fmt.Errorf("--platform %w", err)}
	}
	o.plats = plats
	switch o.progress {
	case "auto", "tty", "plain", "none":
	default:
		return usagef("--progress %q: want auto, tty, plain or none", o.progress)
	}
	if err := o.signedFlags.validate(); err != nil {
		return err
	}
	return o.limits.validate()
}

func newRecompress() *cobra.Command {
	var o pipelineOptions
	cmd := &cobra.Command{
		Use:   "recompress SRC DST",
		Short: "Recompress every layer of an image (zstd by default), nothing else",
		Long: `recompress reads SRC and writes DST with every layer recompressed. The
uncompressed tar bytes of every layer stay identical, so diff_ids and the
config blob do not change. A layer already in the target compression is
reused as it is (and mounted across repositories where the registry allows)
unless --force. zstd and none outputs use OCI media types; gzip output keeps
the source's manifest format. An index is processed per platform and written
as an index of the same platforms in the same order (or the --platform subset).

The digest of what was written is printed on stdout.`,
		Example: `  layerslim recompress registry.example/app:1.4 registry.example/app:1.4-zstd
  layerslim recompress oci:./testdata/sample:sample oci:/tmp/out:sample
  layerslim recompress docker-archive:app.tar oci:/tmp/app --platform linux/amd64
  layerslim recompress --compression gzip --level 9 oci:in:v1 docker-archive:out.tar:app:v1`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			j, err := o.job(args[0], args[1])
			if err != nil {
				return err
			}
			return j.run(cmd)
		},
	}
	o.addFlags(cmd)
	return cmd
}

// job validates o and returns the job that recompresses src into dst.
func (o *pipelineOptions) job(src, dst string) (*job, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &job{src: src, dst: dst, o: o}, nil
}

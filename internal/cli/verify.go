package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"text/tabwriter"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/imagewalk"
	"github.com/layerslim/layerslim/verify"
)

type verifyOptions struct {
	dropOptions
	platforms   []string
	insecure    bool
	jobs        int
	json        bool
	showAllowed bool
	limits      limitOptions

	plats []v1.Platform
}

func (o *verifyOptions) addFlags(cmd *cobra.Command) {
	o.dropOptions.addFlags(cmd)
	f := cmd.Flags()
	f.StringSliceVar(&o.platforms, "platform", nil, "only these platforms of an index, as os/arch[/variant],… (DST may lack the others)")
	f.BoolVar(&o.insecure, "insecure", false, "allow plain HTTP and unverified TLS to registries")
	f.IntVar(&o.jobs, "jobs", runtime.GOMAXPROCS(0), "layers read at once")
	f.BoolVar(&o.json, "json", false, "print the results as JSON")
	f.BoolVar(&o.showAllowed, "show-allowed", false, "list dropped paths and stripped ELF files too, not only violations")
	o.limits.addLayerFlag(cmd)
	o.limits.addSpoolFlag(cmd)
}

func (o *verifyOptions) validate() error {
	if o.jobs < 1 {
		return usagef("--jobs must be at least 1")
	}
	if err := o.limits.validate(); err != nil {
		return err
	}
	plats, err := imagewalk.ParsePlatforms(o.platforms)
	if err != nil {
		return &UsageError{Err: fmt.Errorf("--platform %w", err)}
	}
	o.plats = plats
	return nil
}

func newVerify() *cobra.Command {
	var o verifyOptions
	cmd := &cobra.Command{
		Use:   "verify SRC DST",
		Short: "Check that DST keeps the guarantee: the same files as SRC but what the options drop",
		Long: `verify compares SRC with DST, a rewrite of it, platform by platform. It
merges the layers of each image (whiteouts and opaque directories
applied) and compares the two filesystems path by path: type, mode
(setuid, setgid and sticky bits included), numeric owner, xattrs, symlink
targets, hardlinks, device numbers, mtimes and contents. It also compares
the config (entrypoint, cmd, env, labels, user, workdir, ports, volumes,
platform) and checks the diff_ids and history of DST against its layers.

Two differences are allowed:
  dropped        a path of SRC missing from DST that the --drop, --drop-path
                 and --keep options (with rewrite's meaning) drop
  elf-stripped   an ELF file whose loadable segments are byte-identical (only
                 e_shoff, e_shnum and e_shstrndx may change): it lost
                 non-allocated sections only, and runs as before
Everything else is a violation. Each platform gets one summary line, then a
line per violation (--show-allowed lists the allowed differences too).

Exit status: 0 when there is no violation, 1 when there is one (or SRC or
DST cannot be read), 2 for a usage error.`,
		Example: `  layerslim verify registry.example/app:1.4 registry.example/app:1.4-slim
  layerslim verify oci:./testdata/sample:sample oci:/tmp/slim:sample --show-allowed
  layerslim verify app:1.4 app:1.4-slim --drop default,-docs --keep 'usr/share/doc/**'
  layerslim verify oci:in:v1 oci:out:v1 --platform linux/amd64 --json`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			m, err := o.matcher()
			if err != nil {
				return err
			}
			vo := verify.Options{Dropped: m.Match, Jobs: o.jobs, Platforms: o.plats, MaxLayerSize: o.limits.layer, MaxSpool: o.limits.spool}
			results, err := runVerify(cmd, args[0], args[1], &o, vo)
			if err != nil {
				return err
			}
			return renderVerify(cmd.OutOrStdout(), results, o.json, o.showAllowed)
		},
	}
	o.addFlags(cmd)
	return cmd
}

// runVerify opens both references and compares them.
func runVerify(cmd *cobra.Command, srcArg, dstArg string, o *verifyOptions, vo verify.Options) ([]*verify.Result, error) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	src, err := imageref.Parse(srcArg, o.insecure)
	if err != nil {
		return nil, &UsageError{Err: fmt.Errorf("SRC: %w", err)}
	}
	dst, err := imageref.Parse(dstArg, o.insecure)
	if err != nil {
		return nil, &UsageError{Err: fmt.Errorf("DST: %w", err)}
	}
	ro := registryOptions(cmd, imageref.Options{Insecure: o.insecure, UserAgent: "layerslim/" + Version})
	source, err := imageref.Open(ctx, src, ro)
	if err != nil {
		return nil, err
	}
	output, err := imageref.Open(ctx, dst, ro)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "layerslim-verify-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	vo.TempDir = tmp

	var results []*verify.Result
	switch {
	case source.Index != nil && output.Index != nil:
		results, err = verify.Index(ctx, source.Index, output.Index, vo)
	case source.Index != nil:
		var r *verify.Result
		r, err = verify.IndexImage(ctx, source.Index, output.Image, vo)
		results = []*verify.Result{r}
	case output.Index != nil && verify.HasVariants(output.Index): // --add-compression
		results, err = verify.ImageIndex(ctx, source.Image, output.Index, vo)
	case output.Index != nil:
		return nil, fmt.Errorf("DST %s is an index but SRC %s is a single image", dst, src)
	default:
		var r *verify.Result
		r, err = verify.Image(ctx, source.Image, output.Image, vo)
		results = []*verify.Result{r}
	}
	if err != nil {
		return nil, fmt.Errorf("verifying %s against %s: %w", dst, src, err)
	}
	return results, nil
}

// renderVerify prints the results and returns an error when there are
// violations.
func renderVerify(w io.Writer, results []*verify.Result, asJSON, showAllowed bool) error {
	if asJSON {
		b, err := json.MarshalIndent(results, "", "  ")
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, r := range results {
			fmt.Fprintf(tw, "%s: %d paths compared, %d dropped, %d ELF files stripped, %d violations\n",
				r.Platform, r.Paths, r.Count(verify.Dropped), r.Count(verify.ELFStripped), r.Violations)
			for _, d := range r.Differences {
				if d.Verdict != verify.Violation && !showAllowed {
					continue
				}
				line := fmt.Sprintf("  %s\t%s\t%s\t%s → %s", d.Verdict, d.Path, d.What, d.Source, d.Output)
				if d.Reason != "" {
					line += "\t(" + d.Reason + ")"
				}
				fmt.Fprintln(tw, line)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return verify.Check(results)
}

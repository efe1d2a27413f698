package rewrite

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/imagewalk"
	"github.com/layerslim/layerslim/internal/limit"
	"github.com/layerslim/layerslim/tarfilter"
)

// Option configures Image and Index.
type Option func(*options) error

type options struct {
	codec       compress.Codec
	level       int
	force       bool
	jobs        int
	encoderJobs int            // 0: jobs
	pool        *compress.Pool // encodes the frames of every layer of the run
	platforms   []v1.Platform
	filter      func(Recorder) tarfilter.Filter // nil: layers are copied byte for byte
	tempDir     string
	layerLimit  int64 // WithMaxLayerSize, as given
	spoolLimit  int64 // WithMaxSpool, as given
	reporter    Reporter
	logger      *slog.Logger
	version     string
	squash      SquashMode
	strip       elf.Mode
	debugImage  bool
	baseFinder  BaseFinder
	optionText  []string // what changes the output, for the provenance annotation
	cache       LayerCache
	stripSkip   []string          // globs added to DefaultStripSkip
	debugLinks  map[string]uint32 // see splitConfig.links
	lowerLinks  map[string]bool   // names lower layers dropped as links (see linkChain)
	addCodec    compress.Codec    // WithAddCompression; "" for none
	addLevel    int
	primary     *options // set on the options of the added compression's variant
	chunked     bool     // WithZstdChunked
}

func makeOptions(opts ...Option) (*options, error) {
	o := &options{
		codec:    compress.Zstd,
		jobs:     runtime.GOMAXPROCS(0),
		reporter: nopReporter{},
		logger:   slog.New(slog.DiscardHandler),
		version:  "dev",
		squash:   SquashNone,
		strip:    elf.None,
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if o.level == 0 {
		o.level = compress.DefaultLevel(o.codec)
	}
	if err := o.checkAdd(); err != nil {
		return nil, err
	}
	if err := o.checkChunked(); err != nil {
		return nil, err
	}
	if o.pool == nil {
		// One pool for every layer in flight: the output is cut into
		// independent frames, so one big layer left running alone keeps
		// as many encoders busy as many layers do.
		p, err := compress.NewPool(cmp.Or(o.encoderJobs, min(o.jobs, runtime.GOMAXPROCS(0))))
		if err != nil {
			return nil, err
		}
		o.pool = p
	}
	if o.tempDir == "" {
		o.tempDir = os.TempDir()
	}
	return o, nil
}

// WithCompression sets the output codec and level (0 means the codec's
// default: zstd 3, gzip 6).
func WithCompression(c compress.Codec, level int) Option {
	return func(o *options) error {
		if _, err := compress.ParseCodec(string(c)); err != nil {
			return err
		}
		o.codec, o.level = c, level
		return nil
	}
}

// WithForce re-encodes layers that are already in the target compression.
func WithForce(force bool) Option {
	return func(o *options) error { o.force = force; return nil }
}

// WithJobs bounds the number of layers processed at once.
func WithJobs(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("jobs must be at least 1, got %d", n)
		}
		o.jobs = n
		return nil
	}
}

// WithEncoderConcurrency sets how many frames (zstd) or blocks (gzip) are
// encoded at once, across all the layers of the call (by default WithJobs,
// at most GOMAXPROCS: more encoders than cores only hold more frames). It
// does not change the output.
func WithEncoderConcurrency(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("encoder concurrency must be at least 1, got %d", n)
		}
		o.encoderJobs = n
		return nil
	}
}

// WithEncoderPool has the output of the call encoded by p, which may be
// shared with other calls at the same time (a batch of images) so that all
// of them together keep p.Size() encoders busy. It overrides
// WithEncoderConcurrency and does not change the output.
func WithEncoderPool(p *compress.Pool) Option {
	return func(o *options) error {
		if p == nil {
			return errors.New("nil encoder pool")
		}
		o.pool = p
		return nil
	}
}

// WithPlatforms keeps only the platforms of an index that one of ps selects
// (the rule is internal/imagewalk's: an empty variant or os.version in ps
// matches any, and arm64 without a variant is v8).
func WithPlatforms(ps ...v1.Platform) Option {
	return func(o *options) error { o.platforms = ps; return nil }
}

// WithFilter runs each layer's tar stream through the filter that newFilter
// returns (one per layer, so filters may keep state; rec collects what they
// change for the layer's report). Without it, layers are recompressed byte
// for byte.
func WithFilter(newFilter func(rec Recorder) tarfilter.Filter) Option {
	return func(o *options) error { o.filter = newFilter; return nil }
}

// WithTempDir sets where output layers are spooled until written.
func WithTempDir(dir string) Option {
	return func(o *options) error { o.tempDir = dir; return nil }
}

// WithReporter receives progress events. Report must not block.
func WithReporter(r Reporter) Option {
	return func(o *options) error {
		if r == nil {
			return errors.New("nil reporter")
		}
		o.reporter = r
		return nil
	}
}

// WithLogger sets where diagnostics go; by default they are discarded.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error { o.logger = l; return nil }
}

// WithVersion names the layerslim version recorded in the output's
// provenance annotations.
func WithVersion(v string) Option {
	return func(o *options) error { o.version = v; return nil }
}

// WithOptionText records, in the provenance annotation, options of the
// caller that shape the output (for example the filters' settings).
func WithOptionText(kv ...string) Option {
	return func(o *options) error { o.optionText = append(o.optionText, kv...); return nil }
}

// describe is the canonical text of the options that change the output.
func (o *options) describe() string {
	if o.primary != nil {
		return o.primary.describe()
	}
	parts := []string{"compression=" + string(o.codec)}
	if o.codec != compress.None {
		parts = append(parts, fmt.Sprintf("level=%d", o.level))
	}
	if o.force {
		parts = append(parts, "force=true")
	}
	if o.squash != SquashNone {
		parts = append(parts, "squash="+string(o.squash))
	}
	if o.strip != elf.None {
		parts = append(parts, "strip="+o.strip.String())
	}
	if len(o.platforms) > 0 {
		parts = append(parts, imagewalk.OptionText(o.platforms))
	}
	parts = append(parts, o.describeAdd()...)
	parts = append(parts, o.optionText...)
	return strings.Join(parts, " ")
}

// WithStrip splits the debug information out of the ELF files of every
// layer (default elf.None: ELF files are left alone).
func WithStrip(m elf.Mode) Option {
	return func(o *options) error { o.strip = m; return nil }
}

// WithDebugImage also builds, for each image, a debug image: the slim image
// plus one layer holding the debug files split out of it.
func WithDebugImage(on bool) Option {
	return func(o *options) error { o.debugImage = on; return nil }
}

// tarPass reports whether layers go through the tar pipeline at all.
func (o *options) tarPass() bool { return o.filter != nil || o.strip != elf.None }

// chain builds the filters of one layer: the name cleaner, (for a layer
// rewritten again knowing the links lower layers dropped) linkChain, the
// caller's, then the ELF splitter, then (for the base of a merge) the path
// recorder.
func (o *options) chain(rec Recorder, paths map[string]bool, debug func(DebugFile)) tarfilter.Filter {
	fs := []tarfilter.Filter{cleanNames(rec)}
	if o.lowerLinks != nil {
		fs = append(fs, linkChain(o.lowerLinks, rec))
	}
	if o.filter != nil {
		fs = append(fs, o.filter(rec))
	}
	if o.strip != elf.None {
		fs = append(fs, splitELF(o.splitConfig(), rec, debug))
	}
	if paths != nil {
		fs = append(fs, recordPaths(paths))
	}
	return tarfilter.Chain(fs...)
}

// The limits on what a hostile layer can make a rewrite read or keep are
// WithMaxLayerSize and WithMaxSpool, named as the flags that set them
// (--max-layer-size, --max-spool); analyze.Options and verify.Options
// spell them MaxLayerSize and MaxSpool. For each, 0 takes the default and
// a negative value means no limit.
const (
	DefaultMaxLayerSize = limit.DefaultMaxLayerSize // 64 GiB
	DefaultMaxSpool     = limit.DefaultMaxSpool     // 16 GiB
)

// ErrLimitExceeded is wrapped by the error for input that goes past one of
// the limits; the message names the limit and the flag that raises it.
var ErrLimitExceeded = limit.ErrExceeded

// WithMaxLayerSize bounds the uncompressed bytes one layer may hold, what
// follows its tar end-of-archive blocks included, and the bytes its files
// may hold with sparse files' holes expanded (0: DefaultMaxLayerSize,
// negative: no limit). It stops decompression bombs.
func WithMaxLayerSize(n int64) Option {
	return func(o *options) error { o.layerLimit = n; return nil }
}

// WithMaxSpool bounds the bytes one file may take when it is put aside for
// random access: an ELF file being split, a hardlink's old content read
// again by a squash (0: DefaultMaxSpool, negative: no limit).
func WithMaxSpool(n int64) Option {
	return func(o *options) error { o.spoolLimit = n; return nil }
}

func (o *options) maxLayer() int64 { return limit.Resolve(o.layerLimit, limit.DefaultMaxLayerSize) }
func (o *options) maxSpool() int64 { return limit.Resolve(o.spoolLimit, limit.DefaultMaxSpool) }

// checkSpool fails for a file of size bytes that may not be spooled.
func (o *options) checkSpool(size int64) error {
	if n := o.maxSpool(); n > 0 && size > n {
		return limit.Spool(size, n)
	}
	return nil
}

// layerReader bounds the uncompressed stream of one layer.
func (o *options) layerReader(r io.Reader) io.Reader {
	n := o.maxLayer()
	return limit.Reader(r, n, limit.Layer(n))
}

package run

import (
	"context"
	"fmt"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/imagewalk"
	"github.com/layerslim/layerslim/internal/signed"
	"github.com/layerslim/layerslim/rewrite"
)

// Signed is what was found attached to the source, and what became of it.
type Signed struct {
	Policy signed.Policy
	// Copy is Options.CopyReferrers.
	Copy bool
	// Found is what is attached to the source manifests; after the write,
	// each names its new subject, and the SBOMs their copy (or CopyError).
	Found []signed.Artifact
	// LookupErr is why the lookup failed (only under signed.Warn: the other
	// policies fail the job).
	LookupErr error
	// Labels name the source manifests for messages: "the image", "the
	// index", a platform.
	Labels map[v1.Hash]string
	// Copied is how many SBOMs were copied to the new digest.
	Copied int
}

// Binding are the artifacts of Found that stop verifying for a new digest
// (signatures and attestations).
func (s *Signed) Binding() []signed.Artifact { return signed.Binding(s.Found) }

// Skip says whether the policy skips this source.
func (s *Signed) Skip() bool { return s.Policy == signed.Skip && len(s.Binding()) > 0 }

// checkSigned looks for what is attached to the source manifests and
// applies the policy before anything is rewritten or written: fail returns
// an error, skip says so in the result. A lookup that fails stops skip and
// fail (they cannot tell), and is a warning under warn.
func checkSigned(ctx context.Context, source *imageref.Source, o *Options) (*Signed, error) {
	src := o.Src
	sc := &Signed{Policy: o.Signed, Copy: o.CopyReferrers, Labels: map[v1.Hash]string{}}
	if sc.Policy == "" {
		sc.Policy = signed.Warn
	}
	subjects, err := Subjects(source, o.Platforms)
	if err == nil {
		sc.Found, err = signed.Find(ctx, src, o.Registry, subjects...)
	}
	if err != nil {
		if sc.Policy != signed.Warn {
			return nil, fmt.Errorf("looking for signatures of %s: %w; with --signed=%s nothing is written unless the lookup succeeds", src, err, sc.Policy)
		}
		sc.LookupErr = err
		o.report(SignedChecked{Src: src, Signed: sc})
		return sc, nil
	}
	sc.labelSource(source)
	o.report(SignedChecked{Src: src, Signed: sc})
	if binding := sc.Binding(); len(binding) > 0 && sc.Policy == signed.Fail {
		return nil, fmt.Errorf("%s is signed (%s): --signed=fail, nothing written", src, signed.Count(binding))
	}
	return sc, nil
}

// Subjects are the manifests of src that a rewrite replaces: src itself and,
// for an index, each image it lists (only those of platforms, when given;
// attestations are not images, and a nested index is refused, as a rewrite
// does: imagewalk.Images).
func Subjects(src *imageref.Source, platforms []v1.Platform) ([]v1.Hash, error) {
	out := []v1.Hash{src.Descriptor.Digest}
	if src.Index == nil {
		return out, nil
	}
	im, err := src.Index.IndexManifest()
	if err != nil {
		return nil, err
	}
	images, err := imagewalk.Images(im, platforms)
	if err != nil {
		return nil, err
	}
	for _, d := range images {
		if !slices.Contains(out, d.Digest) {
			out = append(out, d.Digest)
		}
	}
	return out, nil
}

// labelSource names the source manifests for messages.
func (s *Signed) labelSource(source *imageref.Source) {
	if source.Index == nil {
		s.Labels[source.Descriptor.Digest] = "the image"
		return
	}
	s.Labels[source.Descriptor.Digest] = "the index"
	if im, err := source.Index.IndexManifest(); err == nil {
		for _, d := range im.Manifests {
			if d.Platform != nil {
				s.Labels[d.Digest] = d.Platform.String()
			}
		}
	}
}

// afterWrite records the new digests in what was found and copies SBOMs
// when asked (not in a dry run).
func afterWrite(ctx context.Context, s *Signed, res *rewrite.Result, o *Options) {
	if len(s.Found) == 0 {
		return
	}
	digests := Digests(res.Report)
	for i := range s.Found {
		if n, ok := digests[s.Found[i].Subject]; ok {
			s.Found[i].NewSubject = &n
		}
	}
	if s.Copy && !o.DryRun {
		s.Copied = signed.CopySBOMs(ctx, o.Src, o.Dst, o.Registry, s.Found, newDescriptors(res))
	}
}

// newDescriptors maps each rewritten source manifest to the descriptor of
// its replacement.
func newDescriptors(res *rewrite.Result) map[v1.Hash]v1.Descriptor {
	out := map[v1.Hash]v1.Descriptor{}
	var top partial.Describable = res.Image
	if res.Index != nil {
		top = res.Index
	}
	if d, err := partial.Descriptor(top); err == nil {
		out[res.Report.SourceDigest] = v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}
	}
	if res.Index == nil {
		return out
	}
	im, err := res.Index.IndexManifest()
	if err != nil {
		return out
	}
	for _, ir := range res.Report.Images {
		for _, d := range im.Manifests {
			if d.Digest == ir.OutputDigest {
				out[ir.SourceDigest] = v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}
			}
		}
	}
	return out
}

package rewrite

import "strings"

// WithStripSkip leaves the ELF files at paths matching one of globs (clean
// relative paths, the --drop-path glob syntax) as they are, in addition to
// DefaultStripSkip. The report names those that carry debug sections.
func WithStripSkip(globs ...string) Option {
	return func(o *options) error {
		if _, err := compileGlobs(globs); err != nil {
			return err
		}
		o.stripSkip = append(o.stripSkip, globs...)
		if len(globs) > 0 {
			o.optionText = append(o.optionText, "strip-skip="+strings.Join(globs, ","))
		}
		return nil
	}
}

// splitConfig is the ELF splitter's configuration for this run.
func (o *options) splitConfig() splitConfig {
	return splitConfig{
		mode:     o.strip,
		tempDir:  o.tempDir,
		maxSpool: o.maxSpool(),
		skip:     mustGlobs(append(append([]string(nil), DefaultStripSkip...), o.stripSkip...)),
		links:    o.debugLinks,
	}
}

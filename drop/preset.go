package drop

import (
	"fmt"
	"strings"
)

// A Preset is a named set of paths that an image does not need at run
// time: package manager caches, documentation, temporary files.
type Preset struct {
	Name        string
	Description string
	// Globs are the paths dropped, as globs over clean relative paths (see
	// Pattern).
	Globs []string
	// Except are paths the globs match that the preset keeps.
	Except []string
	// Default presets are on unless --drop says otherwise.
	Default bool
}

// presets is the fixed list, defaults first. Globs name files only:
// directories are never dropped, so an emptied cache directory stays.
var presets = []Preset{
	{
		Name:        "apt",
		Description: "APT package lists and downloaded packages",
		Globs:       []string{"var/lib/apt/lists/**", "var/cache/apt/**"},
		Default:     true,
	},
	{
		Name:        "dpkg",
		Description: "dpkg and debconf backup files, dpkg and APT logs",
		Globs: []string{
			"var/lib/dpkg/*-old", "var/cache/debconf/*-old",
			"var/log/dpkg.log", "var/log/alternatives.log", "var/log/apt/**",
		},
		Default: true,
	},
	{
		Name:        "apk",
		Description: "Alpine apk package cache (not the installed database, lib/apk/db)",
		Globs:       []string{"var/cache/apk/**"},
		Default:     true,
	},
	{
		Name:        "dnf",
		Description: "dnf and yum metadata and package caches and logs (not the history database)",
		Globs: []string{
			"var/cache/dnf/**", "var/cache/yum/**", "var/cache/libdnf5/**",
			"var/log/dnf.log", "var/log/dnf.librepo.log", "var/log/dnf.rpm.log",
			"var/log/hawkey.log", "var/log/yum.log",
		},
		Default: true,
	},
	{
		Name:        "pip",
		Description: "pip's download and wheel cache and its build directories in /tmp",
		Globs:       []string{"**/.cache/pip/**", "tmp/pip-*/**"},
		Default:     true,
	},
	{
		Name:        "npm",
		Description: "npm and Yarn 1 caches (not a project's .yarn/cache, nor Yarn 2+'s global cache: Plug'n'Play loads packages from them)",
		Globs: []string{
			"**/.npm/_cacache/**", "**/.npm/_logs/**",
			"**/.cache/yarn/**",
		},
		Default: true,
	},
	{
		Name:        "gocache",
		Description: "the Go build cache (GOCACHE)",
		Globs:       []string{"**/.cache/go-build/**"},
		Default:     true,
	},
	{
		Name:        "docs",
		Description: "documentation (license and copyright files are kept)",
		Globs:       []string{"usr/share/doc/**", "usr/local/share/doc/**"},
		Default:     true,
	},
	{
		Name:        "man",
		Description: "manual pages",
		Globs:       []string{"usr/share/man/**", "usr/local/share/man/**"},
		Default:     true,
	},
	{
		Name:        "info",
		Description: "GNU info pages",
		Globs:       []string{"usr/share/info/**", "usr/local/share/info/**"},
		Default:     true,
	},
	{
		Name:        "tmp",
		Description: "temporary files",
		Globs:       []string{"tmp/**", "var/tmp/**"},
		Default:     true,
	},
	{
		Name:        "pnpm",
		Description: "the pnpm store; opt-in because node_modules files are hardlinks into it, and a dropped store takes them along",
		Globs:       []string{"**/.pnpm-store/**", "**/.local/share/pnpm/store/**"},
	},
	{
		Name:        "gomodcache",
		Description: "the Go module cache (GOMODCACHE)",
		Globs:       []string{"**/go/pkg/mod/**"},
	},
	{
		Name:        "locales",
		Description: "translations and compiled locales, except English and C (the locale-archive goes too)",
		Globs:       []string{"usr/share/locale/**", "usr/lib/locale/**"},
		Except: []string{
			"usr/share/locale/locale.alias", "usr/share/locale/en*/**", "usr/share/locale/C*/**",
			"usr/lib/locale/C.utf8/**", "usr/lib/locale/C.UTF-8/**", "usr/lib/locale/en_*/**",
		},
	},
	{
		Name:        "pycache",
		Description: "compiled Python bytecode (Python recompiles it, or runs from source)",
		Globs:       []string{"**/__pycache__/**", "**/*.pyc", "**/*.pyo"},
	},
	{
		Name:        "static-archives",
		Description: "static libraries (*.a), except those gcc needs to link dynamically",
		Globs:       []string{"usr/lib/**/*.a", "usr/lib64/**/*.a", "usr/local/lib/**/*.a"},
		Except:      []string{"usr/lib/gcc/**", "usr/lib64/gcc/**", "**/*_nonshared.a"},
	},
}

// defaultKeep are the license and copyright files kept whatever the
// presets and --drop-path say.
var defaultKeep = []string{
	"usr/share/doc/*/copyright",
	"usr/share/common-licenses/**",
	"**/copyright",
	"**/COPYRIGHT*",
	"**/LICENSE*",
	"**/LICENCE*",
	"**/License*",
	"**/license*",
	"**/licence*",
	"**/COPYING*",
	"**/NOTICE*",
}

// Presets returns every preset, the default ones first, in a fixed order.
// The result is a copy.
func Presets() []Preset {
	out := make([]Preset, len(presets))
	for i, p := range presets {
		p.Globs = append([]string(nil), p.Globs...)
		p.Except = append([]string(nil), p.Except...)
		out[i] = p
	}
	return out
}

// DefaultKeep returns the globs of the license and copyright files that are
// always kept: they win over every preset and --drop-path.
func DefaultKeep() []string { return append([]string(nil), defaultKeep...) }

// Table is a stable text table of the presets, their default state and
// their globs, followed by the files always kept, for --help and the
// README.
func Table() string {
	w := len("PRESET")
	for _, p := range presets {
		w = max(w, len(p.Name))
	}
	var b strings.Builder
	row := func(name, def, glob string) {
		fmt.Fprintf(&b, "%-*s  %-7s  %s\n", w, name, def, glob)
	}
	row("PRESET", "DEFAULT", "PATHS")
	for _, p := range presets {
		def := "off"
		if p.Default {
			def = "on"
		}
		for i, g := range p.Globs {
			if i == 0 {
				row(p.Name, def, g)
			} else {
				row("", "", g)
			}
		}
		for _, g := range p.Except {
			row("", "", "except "+g)
		}
	}
	b.WriteString("\nAlways kept (license and copyright files):\n")
	for _, g := range defaultKeep {
		b.WriteString("  " + g + "\n")
	}
	return b.String()
}

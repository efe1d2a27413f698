package depcheck

import (
	"fmt"
	"go/types"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/tools/go/packages"
)

const module = "github.com/layerslim/layerslim"

// layers places every package of the module (by its path in the module; an
// entry covers the packages below it too, the longest entry wins). A
// package may import packages of its own layer and of lower ones, never of
// a higher one. Add new packages here.
var layers = []struct {
	name     string
	packages []string
}{
	// Small packages with one job each.
	{"leaf", []string{
		"internal/limit", "internal/spool", "internal/blob", "internal/tarentry", "internal/whiteout", "internal/registryclient", "internal/gcpace", "internal/iocount", "internal/ctxtime",
		"manifest", "compress", "elf", "internal/testenv", "internal/depcheck",
	}},
	// The tar filter engine, the drop policy, reading and writing images in
	// their places, what is attached to a source.
	{"engine", []string{
		"tarfilter", "drop", "internal/imageref", "internal/imagewalk", "internal/signed",
	}},
	// What the product does to an image, one package per job.
	{"middle", []string{
		"rewrite", "verify", "analyze", "internal/debugtree", "internal/debugserve",
	}},
	// One SRC→DST run, and many of them.
	{"top", []string{"internal/run", "internal/batch"}},
	// Command lines and programs.
	{"shell", []string{"internal/cli", "cmd", "bench", "build"}},
}

// layerOf is the layer of the package at path rel in the module (-1 if
// the table has none).
func layerOf(rel string) int {
	best, layer := -1, -1
	for i, l := range layers {
		for _, p := range l.packages {
			if (rel == p || strings.HasPrefix(rel, p+"/")) && len(p) > best {
				best, layer = len(p), i
			}
		}
	}
	return layer
}

// load loads the module's packages once (types from export data).
var load = func() func(t *testing.T) []*packages.Package {
	var once sync.Once
	var pkgs []*packages.Package
	var err error
	return func(t *testing.T) []*packages.Package {
		t.Helper()
		once.Do(func() {
			cfg := &packages.Config{Mode: packages.NeedName | packages.NeedImports | packages.NeedTypes, Dir: "../.."}
			pkgs, err = packages.Load(cfg, module+"/...")
			if err == nil {
				for _, p := range pkgs {
					for _, e := range p.Errors {
						err = fmt.Errorf("%s: %v", p.PkgPath, e)
					}
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		return pkgs
	}
}()

func rel(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }

func internal(path string) bool {
	return path == module+"/internal" || strings.Contains(path, "/internal/") || strings.HasSuffix(path, "/internal")
}

func TestLayerTable(t *testing.T) {
	for _, c := range []struct {
		pkg  string
		want string
	}{
		{"internal/limit", "leaf"}, {"drop", "engine"}, {"internal/signed", "engine"}, {"rewrite", "middle"},
		{"analyze/report", "middle"}, {"internal/imageref/registry", "engine"}, {"internal/batch", "top"},
		{"cmd/layerslim", "shell"}, {"nosuch", ""},
	} {
		got := ""
		if l := layerOf(c.pkg); l >= 0 {
			got = layers[l].name
		}
		if got != c.want {
			t.Errorf("layerOf(%s) = %q, want %q", c.pkg, got, c.want)
		}
	}
}

func TestLayers(t *testing.T) {
	for _, p := range load(t) {
		from := layerOf(rel(p.PkgPath))
		if from < 0 {
			t.Errorf("%s is in no layer: add it to the table in depcheck_test.go", rel(p.PkgPath))
			continue
		}
		for path := range p.Imports {
			if !strings.HasPrefix(path, module+"/") {
				continue
			}
			if to := layerOf(rel(path)); to > from {
				t.Errorf("%s (%s) imports %s (%s), a higher layer", rel(p.PkgPath), layers[from].name, rel(path), layers[to].name)
			}
		}
	}
}

func TestPublicAPINamesNoInternalType(t *testing.T) {
	for _, p := range load(t) {
		if internal(p.PkgPath) || p.Name == "main" {
			continue
		}
		for _, bad := range internalTypes(p.Types) {
			t.Errorf("%s: %s", rel(p.PkgPath), bad)
		}
	}
}

// The check itself: internal/run's Options name imageref.Ref, which a
// public package could not.
func TestInternalTypesFindsThem(t *testing.T) {
	for _, p := range load(t) {
		if p.PkgPath != module+"/internal/run" {
			continue
		}
		got := strings.Join(internalTypes(p.Types), "\n")
		for _, want := range []string{"Options.Src names " + module + "/internal/imageref.Ref", "Run names " + module + "/internal/run.Options", "SignedChecked.Signed names"} {
			if !strings.Contains(got, want) {
				t.Errorf("internalTypes(internal/run) misses %q; got:\n%s", want, got)
			}
		}
		return
	}
	t.Fatal("internal/run not loaded")
}

// internalTypes lists the exported identifiers of pkg whose declarations
// name a type of an internal package of the module: in a signature, a
// field, a method, a variable's or constant's type, a type's definition.
func internalTypes(pkg *types.Package) []string {
	var out []string
	scope := pkg.Scope()
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		c := &checker{pkg: pkg, seen: map[types.Type]bool{}}
		switch obj := obj.(type) {
		case *types.TypeName:
			c.walk(obj.Type().Underlying(), name)
			if tn, ok := obj.Type().(*types.Named); ok {
				// The method set of *T: declared and promoted methods.
				ms := types.NewMethodSet(types.NewPointer(tn))
				for sel := range ms.Methods() {
					if m := sel.Obj(); m.Exported() {
						c.walk(m.Type(), name+"."+m.Name())
					}
				}
				if tp := tn.TypeParams(); tp != nil {
					for t := range tp.TypeParams() {
						c.walk(t.Constraint(), name)
					}
				}
			}
		default:
			c.walk(obj.Type(), name)
		}
		out = append(out, c.found...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

type checker struct {
	pkg   *types.Package
	seen  map[types.Type]bool
	found []string
}

// walk looks through t, reached from the exported identifier at, for named
// types of internal packages. Named types of other packages are checked
// with their own package; only the exported parts of pkg's own are walked.
func (c *checker) walk(t types.Type, at string) {
	if t == nil || c.seen[t] {
		return
	}
	c.seen[t] = true
	switch t := t.(type) {
	case *types.Named:
		if obj := t.Obj(); obj.Pkg() != nil && internal(obj.Pkg().Path()) && strings.HasPrefix(obj.Pkg().Path(), module) {
			c.found = append(c.found, fmt.Sprintf("%s names %s.%s, a type of an internal package", at, obj.Pkg().Path(), obj.Name()))
		}
		if ta := t.TypeArgs(); ta != nil {
			for a := range ta.Types() {
				c.walk(a, at)
			}
		}
	case *types.Alias:
		c.walk(types.Unalias(t), at)
	case *types.Pointer:
		c.walk(t.Elem(), at)
	case *types.Slice:
		c.walk(t.Elem(), at)
	case *types.Array:
		c.walk(t.Elem(), at)
	case *types.Map:
		c.walk(t.Key(), at)
		c.walk(t.Elem(), at)
	case *types.Chan:
		c.walk(t.Elem(), at)
	case *types.Signature:
		for v := range t.Params().Variables() {
			c.walk(v.Type(), at)
		}
		for v := range t.Results().Variables() {
			c.walk(v.Type(), at)
		}
	case *types.Struct:
		for f := range t.Fields() {
			if f.Exported() {
				c.walk(f.Type(), at+"."+f.Name())
			}
		}
	case *types.Interface:
		for m := range t.Methods() {
			if m.Exported() {
				c.walk(m.Type(), at+"."+m.Name())
			}
		}
		for e := range t.EmbeddedTypes() {
			c.walk(e, at)
		}
	case *types.Union:
		for i := range t.Len() {
			c.walk(t.Term(i).Type(), at)
		}
	case *types.TypeParam:
		c.walk(t.Constraint(), at)
	}
}

// Command scale writes the OCI layouts of the scale measurements of
// docs/hardening.md: an image of many one-file layers (-layers N), or of one
// layer of many empty files (-files N), tagged v1 in the layout -out.
//
//	go run ./bench/scale -layers 2000 -out /tmp/layers-2000
//	go run ./bench/scale -files 500000 -out /tmp/files-500k
package main

import (
	"archive/tar"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	layers := flag.Int("layers", 0, "one-file layers")
	files := flag.Int("files", 0, "empty files in one layer")
	out := flag.String("out", "", "the layout to write")
	flag.Parse()
	if *out == "" || (*layers == 0) == (*files == 0) {
		log.Fatal("usage: scale -out DIR (-layers N | -files N)")
	}
	tmp, err := os.MkdirTemp("", "scale-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	var ls []v1.Layer
	if *layers > 0 {
		for i := range *layers {
			ls = append(ls, layer(tmp, i, 1, 64))
		}
	} else {
		ls = append(ls, layer(tmp, 0, *files, 0))
	}
	base, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{Architecture: "amd64", OS: "linux", RootFS: v1.RootFS{Type: "layers"}})
	if err != nil {
		log.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, ls...)
	if err != nil {
		log.Fatal(err)
	}
	p, err := layout.Write(*out, empty.Index)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		log.Fatal(err)
	}
}

// layer writes a tar of n files of size bytes each (layer i) and returns it
// as a gzip layer.
func layer(dir string, i, n, size int) v1.Layer {
	name := filepath.Join(dir, fmt.Sprintf("layer-%d.tar", i))
	f, err := os.Create(name)
	if err != nil {
		log.Fatal(err)
	}
	tw := tar.NewWriter(f)
	body := make([]byte, size)
	mtime := time.Unix(1700000000, 0)
	for j := range n {
		p := fmt.Sprintf("d%d/f%d", i, j)
		if n > 1 {
			p = fmt.Sprintf("d/%03d/f%d", j%1000, j)
		}
		copy(body, p)
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(size), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
			log.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			log.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	l, err := tarball.LayerFromFile(name)
	if err != nil {
		log.Fatal(err)
	}
	return l
}

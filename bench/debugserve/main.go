// Command debugserve pushes the debug images that bench/debugserve.sh
// serves: REG/bench-debugserve/big:app-debug, whose debug layer holds about
// -big bytes of incompressible debug files, and -images tags
// REG/bench-debugserve/many:tNNN-debug, each a shared base layer plus a
// debug layer of -files small debug files with build-ids of their own. It
// prints one build-id of the big image and one of the last small image.
package main

import (
	"archive/tar"
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var (
	registry = flag.String("registry", "", "registry host:port (plain HTTP)")
	images   = flag.Int("images", 200, "small debug images")
	files    = flag.Int("files", 20, "debug files per small image")
	big      = flag.Int64("big", 100<<20, "bytes of debug files in the big image")
	bigFiles = flag.Int("big-files", 50, "debug files in the big image")
)

type entry struct {
	id   string
	body []byte
}

func layer(entries []entry) v1.Layer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, e := range entries {
		p := "usr/lib/debug/.build-id/" + e.id[:2] + "/" + e.id[2:] + ".debug"
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(len(e.body)), ModTime: mt, Typeflag: tar.TypeReg}); err != nil {
			log.Fatal(err)
		}
		tw.Write(e.body)
	}
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		log.Fatal(err)
	}
	return l
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func id(r *rand.Rand) string { return hex.EncodeToString(randBytes(r, 20)) }

func push(img v1.Image, ref string) {
	t, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		log.Fatal(err)
	}
	if err := remote.Write(t, img); err != nil {
		log.Fatalf("pushing %s: %v", ref, err)
	}
}

func main() {
	flag.Parse()
	if *registry == "" {
		log.Fatal("-registry is required")
	}
	r := rand.New(rand.NewPCG(1, 2))
	base := layer([]entry{{id: id(r), body: []byte("base")}})
	image := func(entries []entry) v1.Image {
		img, err := mutate.AppendLayers(mutate.MediaType(mutate.ConfigMediaType(empty.Image, types.OCIConfigJSON), types.OCIManifestSchema1), base, layer(entries))
		if err != nil {
			log.Fatal(err)
		}
		return img
	}
	var bigEntries []entry
	for range *bigFiles {
		bigEntries = append(bigEntries, entry{id(r), randBytes(r, int(*big/int64(*bigFiles)))})
	}
	push(image(bigEntries), *registry+"/bench-debugserve/big:app-debug")
	fmt.Println("big", bigEntries[0].id, bigEntries[1].id)
	var last string
	for i := range *images {
		var es []entry
		for range *files {
			es = append(es, entry{id(r), randBytes(r, 4096)})
		}
		push(image(es), fmt.Sprintf("%s/bench-debugserve/many:t%03d-debug", *registry, i))
		last = es[0].id
	}
	fmt.Println("small", last)
}

package ocilayout_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/layerslim/layerslim/internal/imageref"
)

// FuzzLayoutReader reads arbitrary bytes as a layout's index.json and as the
// manifest it may name (stored under its right digest, so that the reader
// goes past the digest check): nothing panics, and whatever opens can be
// walked to its layers.
func FuzzLayoutReader(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"DIGEST","size":SIZE}]}`),
		[]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"DIGEST","size":SIZE}]}`),
		[]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"DIGEST","size":1}]}`))
	f.Add([]byte(`null`), []byte(`null`))
	f.Fuzz(func(t *testing.T, index, manifest []byte) {
		dir, err := os.MkdirTemp("", "fuzz-layout-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		sum := sha256.Sum256(manifest)
		h := hex.EncodeToString(sum[:])
		os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755)
		os.WriteFile(filepath.Join(dir, "blobs", "sha256", h), manifest, 0o644)
		os.WriteFile(filepath.Join(dir, "blobs", "sha256", "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"), []byte("{}"), 0o644)
		index = []byte(replaceAll(string(index), map[string]string{"DIGEST": "sha256:" + h, "SIZE": itoa(len(manifest))}))
		os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644)
		src, err := imageref.Open(context.Background(), imageref.Ref{Kind: imageref.OCI, Path: dir}, imageref.Options{})
		_ = err
		if err != nil {
			return
		}
		if src.Image != nil {
			ls, err := src.Image.Layers()
			if err != nil {
				return
			}
			for _, l := range ls {
				if rc, err := l.Compressed(); err == nil {
					io.Copy(io.Discard, rc)
					rc.Close()
				}
			}
			src.Image.ConfigFile()
		}
		if src.Index != nil {
			im, err := src.Index.IndexManifest()
			if err != nil {
				return
			}
			for _, d := range im.Manifests {
				src.Index.Image(d.Digest)
			}
		}
	})
}

func replaceAll(s string, r map[string]string) string {
	for k, v := range r {
		for {
			i := indexOf(s, k)
			if i < 0 {
				break
			}
			s = s[:i] + v + s[i+len(k):]
		}
	}
	return s
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

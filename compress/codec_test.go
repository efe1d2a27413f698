package compress_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/compress"
)

func TestParseCodec(t *testing.T) {
	tests := []struct {
		in      string
		want    compress.Codec
		wantErr bool
	}{
		{"none", compress.None, false},
		{"gzip", compress.Gzip, false},
		{"zstd", compress.Zstd, false},
		{"ZSTD", compress.Zstd, false},
		{"GZip", compress.Gzip, false},
		{"None", compress.None, false},
		{"", "", true},
		{"zst", "", true},
		{"lz4", "", true},
		{" zstd", "", true},
		{"tar+gzip", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := compress.ParseCodec(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseCodec(%q) = %q, want an error", tt.in, got)
				}
				if !errors.Is(err, compress.ErrUnsupported) {
					t.Errorf("error %v does not wrap ErrUnsupported", err)
				}
				for _, name := range []string{"none", "gzip", "zstd"} {
					if !strings.Contains(err.Error(), name) {
						t.Errorf("error %q does not name %q", err, name)
					}
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseCodec(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestLayerMediaType(t *testing.T) {
	tests := []struct {
		codec   compress.Codec
		oci     bool
		want    types.MediaType
		wantErr bool
	}{
		{compress.None, true, "application/vnd.oci.image.layer.v1.tar", false},
		{compress.Gzip, true, "application/vnd.oci.image.layer.v1.tar+gzip", false},
		{compress.Zstd, true, "application/vnd.oci.image.layer.v1.tar+zstd", false},
		{compress.None, false, "application/vnd.docker.image.rootfs.diff.tar", false},
		{compress.Gzip, false, "application/vnd.docker.image.rootfs.diff.tar.gzip", false},
		{compress.Zstd, false, "", true}, // Docker schema 2 has no zstd layer type
		{"lz4", true, "", true},
		{"", false, "", true},
	}
	for _, tt := range tests {
		got, err := compress.LayerMediaType(tt.codec, tt.oci)
		if tt.wantErr {
			if !errors.Is(err, compress.ErrUnsupported) {
				t.Errorf("LayerMediaType(%q, %v) = %q, %v; want an ErrUnsupported error", tt.codec, tt.oci, got, err)
			}
			if got != "" {
				t.Errorf("LayerMediaType(%q, %v) = %q with an error, want \"\"", tt.codec, tt.oci, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("LayerMediaType(%q, %v) = %q, %v; want %q", tt.codec, tt.oci, got, err, tt.want)
		}
		// And back again.
		if c, known := compress.MediaTypeCodec(got); !known || c != tt.codec {
			t.Errorf("MediaTypeCodec(%q) = %q, %v; want %q, true", got, c, known, tt.codec)
		}
		if compress.NonDistributable(got) {
			t.Errorf("NonDistributable(%q) = true for a type LayerMediaType writes", got)
		}
	}
}

func TestMediaTypeCodec(t *testing.T) {
	tests := []struct {
		mt               types.MediaType
		want             compress.Codec
		known            bool
		nonDistributable bool
	}{
		{"application/vnd.oci.image.layer.v1.tar", compress.None, true, false},
		{"application/vnd.oci.image.layer.v1.tar+gzip", compress.Gzip, true, false},
		{"application/vnd.oci.image.layer.v1.tar+zstd", compress.Zstd, true, false},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar", compress.None, true, true},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", compress.Gzip, true, true},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", compress.Zstd, true, true},
		{"application/vnd.docker.image.rootfs.diff.tar.gzip", compress.Gzip, true, false},
		{"application/vnd.docker.image.rootfs.diff.tar", compress.None, true, false},
		{"application/vnd.docker.image.rootfs.diff.tar.zstd", compress.Zstd, true, false},
		{"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", compress.Gzip, true, true},
		// Not layers, or not layer types we know.
		{"application/vnd.oci.image.manifest.v1+json", "", false, false},
		{"application/vnd.oci.image.config.v1+json", "", false, false},
		{"application/vnd.docker.container.image.v1+json", "", false, false},
		{"application/vnd.oci.image.layer.v1.tar+bzip2", "", false, false},
		{"application/vnd.in-toto+json", "", false, false},
		{"APPLICATION/VND.OCI.IMAGE.LAYER.V1.TAR+GZIP", "", false, false},
		{"", "", false, false},
	}
	for _, tt := range tests {
		c, known := compress.MediaTypeCodec(tt.mt)
		if c != tt.want || known != tt.known {
			t.Errorf("MediaTypeCodec(%q) = %q, %v; want %q, %v", tt.mt, c, known, tt.want, tt.known)
		}
		if got := compress.NonDistributable(tt.mt); got != tt.nonDistributable {
			t.Errorf("NonDistributable(%q) = %v, want %v", tt.mt, got, tt.nonDistributable)
		}
	}
}

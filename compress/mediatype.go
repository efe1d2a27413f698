package compress

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Layer media types go-containerregistry has no constant for.
const (
	ociRestrictedLayerZstd types.MediaType = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
	// dockerLayerZstd is not part of Docker's image spec, but some tools
	// write it. It is read, never written.
	dockerLayerZstd types.MediaType = "application/vnd.docker.image.rootfs.diff.tar.zstd"
)

// LayerMediaType returns the layer media type for a layer compressed with c:
// the OCI type when oci is true, the Docker schema 2 type otherwise. Docker
// schema 2 has no zstd layer type, so Zstd with oci false is an error
// wrapping ErrUnsupported.
func LayerMediaType(c Codec, oci bool) (types.MediaType, error) {
	switch {
	case c == None && oci:
		return types.OCIUncompressedLayer, nil
	case c == Gzip && oci:
		return types.OCILayer, nil
	case c == Zstd && oci:
		return types.OCILayerZStd, nil
	case c == None:
		return types.DockerUncompressedLayer, nil
	case c == Gzip:
		return types.DockerLayer, nil
	case c == Zstd:
		return "", fmt.Errorf("%w: zstd layers need an oci manifest, docker schema 2 has no zstd layer media type", ErrUnsupported)
	}
	return "", unsupportedCodec(c)
}

// MediaTypeCodec reports the codec a layer media type claims, and whether mt
// is a layer media type this package knows. For an unknown type it returns
// "" and false.
//
// Known are the OCI layer types (tar, tar+gzip, tar+zstd and their
// nondistributable variants) and the Docker rootfs.diff.tar.gzip,
// rootfs.diff.tar, foreign.diff.tar.gzip and, read only,
// rootfs.diff.tar.zstd types.
func MediaTypeCodec(mt types.MediaType) (c Codec, known bool) {
	switch mt {
	case types.OCIUncompressedLayer, types.OCIUncompressedRestrictedLayer,
		types.DockerUncompressedLayer:
		return None, true
	case types.OCILayer, types.OCIRestrictedLayer,
		types.DockerLayer, types.DockerForeignLayer:
		return Gzip, true
	case types.OCILayerZStd, ociRestrictedLayerZstd,
		dockerLayerZstd:
		return Zstd, true
	}
	return "", false
}

// NonDistributable reports whether mt is a layer type that registries may
// not redistribute: Docker's foreign layer or an OCI nondistributable layer.
// Such layers are usually fetched from URLs in their descriptor and should
// be left as they are.
func NonDistributable(mt types.MediaType) bool {
	switch mt {
	case types.DockerForeignLayer,
		types.OCIUncompressedRestrictedLayer, types.OCIRestrictedLayer, ociRestrictedLayerZstd:
		return true
	}
	return false
}

// Package dockerarchive reads and writes `docker save` tarballs
// (docker-archive:FILE[:TAG]): Open selects one image by tag and presents
// its layer blobs as stored; Write writes one image into a temporary file
// renamed over FILE; CheckWrite tells before any work whether a write would
// fail.
//
// It does not parse references (internal/imageref does), detect
// compression or name layer media types (the compress package does), or
// hold an index: a docker-archive holds single-platform images.
//
// ggcr's tarball.Image is right about which image and which files, but not
// about how to present the layers for a tool that rewrites them:
//
//   - Uncompressed layers (every `docker save` before Docker 25, and Docker
//     25+ too) become a partial.UncompressedLayer, whose Compressed(),
//     Digest() and Size() gzip the whole layer on the fly, again on every
//     call. We would throw that gzip away.
//   - Compressed layers (archives written by crane/ggcr, or by the containerd
//     image store) become a compressed image whose Manifest(), needed by
//     Layers(), hashes every layer up front, and which labels zstd layers as
//     gzip (types.DockerLayer).
//
// So Open uses tarball.LoadManifest and tarball.ImageFromPath to select the
// image and read its config, and presents each layer blob as it is stored:
//
//   - uncompressed: MediaType application/vnd.docker.image.rootfs.diff.tar,
//     Compressed() = Uncompressed() = the bytes in the archive, Digest() =
//     DiffID() from the config, Size() from the tar header;
//   - gzip or zstd (told by the blob's magic bytes, by compress.Sniff; a blob that is xz, lz4 or bzip2 is refused at Open): the blob as is, with the
//     gzip or zstd layer media type; Digest() from the blob's name when it is
//     a digest (blobs/sha256/HEX, HEX.tar.gz), from manifest.json's
//     LayerSources, or else hashed once on first use; DiffID() from the
//     config; Uncompressed() via compress.NewReader.
//
// A digest that was not computed from the bytes (the config's diff_id, a
// blob's name) is checked as the blob is read: a reader that reaches the end
// of a blob with another digest fails. One scan of the tar headers at Open
// records every blob's size and magic bytes, so no layer content is read
// until it is used. The manifest uses Docker media types, or OCI ones when a
// layer is zstd (Docker schema 2 has no zstd layer type).
//
// Foreign (non-distributable) layers listed in LayerSources keep their
// descriptor as given, URLs and all, as ggcr does.
package dockerarchive

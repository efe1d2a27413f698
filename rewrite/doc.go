// Package rewrite is layerslim's pipeline: it rewrites the layers of an
// image or an index (Image, Index) through the product's filters, and
// builds the output images, their debug images and the output index
// around the new layers. It owns the filters that make up a rewrite, the
// work on one layer and the work on a whole image; the generic tar engine
// those filters plug into (Entry, Filter, Chain, the byte-exact copy) is
// package tarfilter.
//
// A call runs in stages, each in its own files:
//
//   - Entry points and reading the source (image.go): Image and Index with
//     their Result; which children of an index are rewritten, and each
//     image's manifest, config (its digest checked) and layers.
//   - Plan (plan.go): which layers the run rewrites and what it does with
//     each: one task per distinct source layer, shared by every image that
//     lists it, and one merge task per squashed stack (base.go finds the
//     base a squash keeps).
//   - Schedule (schedule.go): the tasks in an errgroup, the largest layer
//     first and at most WithJobs at a time, each looked up in the layer
//     cache first (cache.go); then the rounds that rewrite a layer again
//     when a layer below dropped the target of its hardlinks
//     (linkchain.go).
//   - One layer (layer.go): decompress, run the filter chain through
//     tarfilter, recompress into a spool file, hashing as the bytes flow
//     (chunked.go for zstd:chunked); squash.go merges a stack of layers
//     into one in a single top-down walk; order.go reads a layer a second
//     time when its first pass needs it: to put a directory's whiteouts
//     before its entries, and (relink.go) to keep a hardlink whose target
//     the same layer dropped.
//   - The filters (options.go builds the chain): cleannames.go (names
//     that climb out of the root), drop.go (the drop rules, with
//     package drop), elfsplit.go (ELF debug information split off into
//     debug files, with package elf; stripoptions.go).
//   - Assemble (assemble.go): the output images' manifests and configs,
//     the debug image beside each (debugimage.go chooses the debug files),
//     the output index and debug index (subject.go, attestation.go), the
//     images and indexes as ggcr values (built.go), and the
//     dual-compression variants (variants.go).
//
// What a call did comes back as a Report (report.go), and as Events to a
// Reporter while it runs. Options are in options.go.
package rewrite

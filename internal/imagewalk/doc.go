// Package imagewalk holds the rules every command follows when it walks an
// image or an index: which platforms a --platform value names and which
// entries it selects, what counts as an attestation, which children of an
// index are processed, and how an image's manifest, config and layers are
// read. rewrite, analyze, verify, the signed-source check and the CLI call
// it; none of them keeps a copy of these rules.
//
// # Platforms
//
// A --platform value is os/arch[/variant][:os.version]; os and arch are
// required (ParsePlatform). A wanted platform w selects a platform p
// (Satisfies) when
//
//   - w.OS == p.OS and w.Architecture == p.Architecture;
//   - w.Variant is empty, or equals p.Variant, where an arm64 platform
//     without a variant is v8 (the default variant, as containerd
//     normalises it): linux/arm64/v8 selects linux/arm64 and the reverse;
//   - w.OSVersion is empty, or equals p.OSVersion;
//   - every one of w.OSFeatures (and w.Features) is among p's.
//
// That is go-containerregistry's Platform.Satisfies with the arm64
// normalisation. A list of wanted platforms selects p when one of them does;
// an empty list selects every platform (Match). An index entry is matched by
// its descriptor's platform; an image without one (a single image, or an
// entry whose descriptor has none) by its config's os, architecture,
// variant and os.version (Image.Platform).
//
// # Attestations
//
// An index entry is an attestation (IsAttestation), not an image to
// process, when it carries BuildKit's annotation
// vnd.docker.reference.type=attestation-manifest, or when its platform's
// os is "unknown" (BuildKit writes unknown/unknown; no runnable image has
// the os "unknown").
//
// # Children of an index
//
// Children lists the entries of an index a command processes: the images
// (IsImage media type, not attestations) whose platform the wanted list
// selects, and, when the caller keeps the rest and no platform is wanted,
// the other entries to carry over unchanged. An index that lists an index
// is refused (manifest.CheckNotNested) in every command.
//
// # Reading an image
//
// Read reads an image's manifest and config, checks the config blob
// against the manifest's descriptor (digest and size) before parsing it,
// and lists the layers, one per manifest entry. Image.Layers pairs each
// layer with its descriptor and diff_id.
package imagewalk

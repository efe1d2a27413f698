// Package registry reads and writes images and indexes in a registry with
// go-containerregistry's remote package: Open (remote.Get, with image
// layers that answer from their manifest parsed once and fetch blobs
// through one shared remote.Puller, and stay mountable) and Write
// (remote.Push, progress forwarded to a channel that stays open).
//
// It does not talk HTTP itself: credentials, TLS, retries and the
// explanation of errors are internal/registryclient's, whose Options every
// call takes. Parsing a reference belongs to internal/imageref.
package registry

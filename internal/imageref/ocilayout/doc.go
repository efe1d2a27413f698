// Package ocilayout reads and writes OCI image layout directories
// (oci:DIR[:TAG] and oci:DIR@sha256:HEX).
//
// Reading (read.go, open.go) checks every manifest, index and config
// against the descriptor that names it and caps its size; layers are
// checked as they stream. Only regular files are read, so a FIFO or a
// device never blocks a read.
//
// Writing (write.go) survives a run killed at any moment: each blob goes to
// a temporary file, is checked against its digest and size, synced and
// hard-linked to its name (never replacing a file); index.json is replaced
// last by a rename, with the directories synced. Writers of one layout, in
// this process or in others, take turns on index.json under a lock
// (lock.go: flock on DIR/index.json.lock). CheckWrite (check.go) tells
// before any work whether a write would fail.
//
// It does not parse references or choose a transport (internal/imageref
// does), and knows nothing of registries or docker-archives.
package ocilayout

// Package depcheck holds no code, only a test of the module's shape (as
// go-containerregistry's depcheck does): the packages sit in layers and
// import only from their own layer or below, and no exported identifier of
// a public package names a type of an internal package (a caller outside
// the module could not name it). The layer table is in depcheck_test.go;
// a new package gets a line there. architecture_test.go keeps
// docs/architecture.md true: its package diagram (generated with
// go test ./internal/depcheck -run TestArchitecture -update) shows every
// package in its layer and only arrows an import backs, and every file the
// page names exists.
package depcheck

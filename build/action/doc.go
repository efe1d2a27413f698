// Package action tests the GitHub Action at the repository's root,
// action.yml: its steps run here as a runner runs a composite action's
// steps, with the variables a runner sets.
//
// The package holds only that test (action_test.go).
package action

// Package testenv holds the helpers layerslim's tests share: deterministic
// tar layers and images built in code, the services that .ci/services.sh
// starts (a real distribution registry and containerd), the skopeo and ctr
// command lines that check our output with other tools, and a byte-level
// check of every blob of an image.
//
// The image builders need no service and no build tag, so unit tests use them
// too. The service helpers skip the test when their variable is unset, except
// under CI=true, where a missing service fails the test: CI must not pass by
// skipping. Start the services by hand with
//
//	eval "$(.ci/services.sh start)"
//	go test -count=1 -tags integration ./...
//	.ci/services.sh stop
//
// Helpers take a testing.TB and fail it on error; none returns an error.
package testenv

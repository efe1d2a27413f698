//go:build integration

package cli_test

import (
	"testing"

	"github.com/layerslim/layerslim/internal/testenv"
)

// The signed-source scenarios against the real distribution registry of
// .ci/services.sh. Distribution 2.8 has no referrers API: referrers are
// found and copied through the sha256-<hex> referrers tag schema.

func TestIntegrationRewriteSignedSource(t *testing.T) {
	testRewriteSignedSource(t, testenv.Repo)
}

func TestIntegrationRewriteSignedIndex(t *testing.T) {
	testRewriteSignedIndex(t, testenv.Repo)
}

package imageref_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/imageref/reftest"
)

func TestOpenErrorsNameTheReference(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "nothing")
	_, err := imageref.Open(ctx, reftest.MustParse(t, "oci:"+dir+":v1"), imageref.Options{})
	if !errors.Is(err, imageref.ErrNotFound) || !strings.HasPrefix(err.Error(), "reading oci:"+dir+":v1: ") {
		t.Errorf("Open of a missing layout: %v", err)
	}
	_, err = imageref.Open(ctx, reftest.MustParse(t, "docker-archive:"+dir+".tar"), imageref.Options{})
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "reading docker-archive:"+dir+".tar: ") {
		t.Errorf("Open of a missing archive: %v", err)
	}
	if _, err := imageref.Open(ctx, imageref.Ref{}, imageref.Options{}); !errors.Is(err, imageref.ErrInvalidReference) {
		t.Errorf("Open(Ref{}): %v, want ErrInvalidReference", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := imageref.WriteImage(cancelled, reftest.MustParse(t, "oci:"+dir), reftest.RandomImage(t, 1), imageref.Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteImage with a cancelled context: %v", err)
	}
}

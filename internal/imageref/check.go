package imageref

import (
	"context"

	"github.com/layerslim/layerslim/internal/imageref/dockerarchive"
	"github.com/layerslim/layerslim/internal/imageref/ocilayout"
	"github.com/layerslim/layerslim/internal/imageref/refio"
)

// CheckWrite tells early, before a long rewrite, whether the registry that
// ref names accepts the credentials found for it: it reads them, asks for a
// push token where the registry uses tokens, and sends GET /v2/ with them.
// It returns nil for references that are not in a registry, and also when
// the registry answers with something other than 401 or 403, so it never
// refuses a push that might work; a registry may still refuse the push
// itself (403 on a repository the account may not write).
//
// For an OCI layout or a docker-archive it checks what can be checked
// before any work (ocilayout.CheckWrite, dockerarchive.CheckWrite): a file where a layout directory
// should be, a dangling symbolic link, a directory that cannot be written,
// a damaged index.json or oci-layout, an unknown imageLayoutVersion.
func CheckWrite(ctx context.Context, ref Ref, o Options) error {
	switch ref.Kind {
	case OCI:
		return ocilayout.CheckWrite(ref.Path)
	case DockerArchive:
		return dockerarchive.CheckWrite(ref.Path)
	case Registry:
		n, err := o.registryName(ref)
		if err != nil {
			return err
		}
		return o.client().CheckPush(ctx, n.Context())
	}
	return nil
}

// CheckWritableFile checks, before any work, that a file such as a report
// can be written at p later (see refio.CheckWritableFile).
func CheckWritableFile(p string) error { return refio.CheckWritableFile(p) }

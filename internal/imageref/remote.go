package imageref

import (
	"context"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Remote returns the registry name of ref (parsed again with name.Insecure
// when o.Insecure asks for plain HTTP) and the remote options Open and the
// writers use (context, credentials, transport, user agent), for callers
// that talk to the registry beyond reading and writing one image, such as
// looking up signatures and referrers. ref must be a Registry reference.
func (o Options) Remote(ctx context.Context, ref Ref) (name.Reference, []remote.Option, error) {
	n, err := o.registryName(ref)
	if err != nil {
		return nil, nil, err
	}
	return n, o.client().RemoteOptions(ctx), nil
}

// RemoteOptions returns the go-containerregistry remote options that Open
// and the writers use (context, credentials, transport with retries, user
// agent), for callers that talk to a registry by repository (tag lists,
// blob checks).
func (o Options) RemoteOptions(ctx context.Context) []remote.Option {
	return o.client().RemoteOptions(ctx)
}

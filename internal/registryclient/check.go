package registryclient

import (
	"context"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// CheckPush tells early, before a long rewrite, whether repo's registry
// accepts the credentials found for it: it reads them, asks for a push
// token where the registry uses tokens, and sends GET /v2/ with them. It
// returns nil also when the registry answers with something other than 401
// or 403, so it never refuses a push that might work; a registry may still
// refuse the push itself (403 on a repository the account may not write).
func (o Options) CheckPush(ctx context.Context, repo name.Repository) error {
	auth, err := authn.Resolve(ctx, namedKeychain{o.keychain()}, repo)
	if err != nil {
		return err
	}
	tr, err := transport.NewWithContext(ctx, repo.Registry, auth, o.Transport(), []string{repo.Scope(transport.PushScope)})
	if err != nil {
		return o.Explain(ctx, repo, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, repo.Scheme()+"://"+repo.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return o.Explain(ctx, repo, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return o.Explain(ctx, repo, transport.CheckError(resp, http.StatusOK))
	}
	return nil
}

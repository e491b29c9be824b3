package imagelookup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	remoteerrors "github.com/containerd/containerd/v2/core/remotes/errors"
	creference "github.com/containerd/containerd/v2/pkg/reference"
	"github.com/distribution/reference"
)

// probeChunk is what CheckUploads sends; the upload is cancelled, so it
// never becomes a blob.
var probeChunk = []byte("storepack upload probe\n")

// CheckUploads starts a blob upload in the repository of image ref, as a
// push does, sends it a small chunk and cancels it, and returns an error
// naming the registry when the registry fails (a server error) or cannot
// be reached. A registry may answer reads and never answer an upload,
// which CheckRegistry cannot see. Any answer but a server error is an
// answer: no right to push is the push's to judge. The caller bounds the
// time; a registry that never answers holds the upload until ctx ends.
func CheckUploads(ctx context.Context, ref string, src Sources) error {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("%s: not an image reference: %w", ref, err)
	}
	domain := reference.Domain(named)
	// The token an upload needs is one to push, as containerd's pusher asks.
	spec, err := creference.Parse(named.String())
	if err == nil {
		ctx, err = docker.ContextWithRepositoryScope(quietResolver(ctx), spec, true)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	hosts, err := registryHosts(ctx, src)(domain)
	if err != nil {
		return fmt.Errorf("the registry %s: %w", domain, err)
	}
	for _, h := range hosts {
		// containerd's pusher pushes to the first host that takes pushes.
		if h.Capabilities.Has(docker.HostCapabilityPush) {
			if err := probeUpload(ctx, h, reference.Path(named)); err != nil && !errors.Is(err, errNoAuthorization) {
				return fmt.Errorf("the registry %s: %w", domain, err)
			}
			return nil
		}
	}
	return nil // no host to push to: the push says so
}

// probeUpload starts an upload in repository repo of registry h
// (POST .../blobs/uploads/), sends it probeChunk (PATCH) and cancels it
// (DELETE). It returns an error when the registry fails or does not answer.
func probeUpload(ctx context.Context, h docker.RegistryHost, repo string) error {
	start := &url.URL{Scheme: h.Scheme, Host: h.Host, Path: h.Path + "/" + repo + "/blobs/uploads/"}
	resp, err := uploadRequest(ctx, h, http.MethodPost, start, nil)
	if err != nil {
		return err
	}
	location, err := uploadLocation(resp, http.StatusAccepted)
	if err != nil || location == nil {
		return err
	}
	resp, err = uploadRequest(ctx, h, http.MethodPatch, location, probeChunk)
	if err == nil {
		var next *url.URL
		if next, err = uploadLocation(resp, http.StatusAccepted); next != nil {
			location = next
		}
	}
	// Cancelled even when the chunk failed. A registry that does not take
	// the DELETE, or no longer answers, purges stale uploads itself (as the
	// distribution registry does).
	if resp, derr := uploadRequest(ctx, h, http.MethodDelete, location, nil); derr == nil {
		resp.Body.Close()
	}
	return err
}

// uploadLocation returns where an upload goes on, from the Location of an
// answer with status want: resolved against the request's URL, as a
// relative reference (the distribution API allows a path or a full URL).
// It is nil when the registry answered otherwise, or named no location;
// the error, when it failed (a server error).
func uploadLocation(resp *http.Response, want int) (*url.URL, error) {
	defer resp.Body.Close()
	if resp.StatusCode >= http.StatusInternalServerError {
		return nil, remoteerrors.NewUnexpectedStatusErr(resp)
	}
	if resp.StatusCode != want || resp.Header.Get("Location") == "" {
		return nil, nil
	}
	location, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		return nil, fmt.Errorf("%s %s: the upload's location: %w", resp.Request.Method, resp.Request.URL.Redacted(), err)
	}
	return location, nil
}

// uploadRequest sends a request of an upload to registry h with h's
// credentials: when the registry answers 401, its challenge goes to h's
// authorizer and the request is sent once more, as containerd does. A
// challenge the authorizer cannot answer (no credentials) leaves the 401
// as the answer; an authorizer that cannot authorize the request (its
// token refused) is errNoAuthorization.
func uploadRequest(ctx context.Context, h docker.RegistryHost, method string, u *url.URL, body []byte) (*http.Response, error) {
	for retried := false; ; retried = true {
		req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		for k, v := range h.Header {
			req.Header[k] = v
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/octet-stream")
		}
		if h.Authorizer != nil {
			if err := h.Authorizer.Authorize(ctx, req); err != nil {
				if ctx.Err() == nil {
					err = fmt.Errorf("%w: %w", errNoAuthorization, err)
				}
				return nil, err
			}
		}
		resp, err := h.Client.Do(req)
		if err != nil || resp.StatusCode != http.StatusUnauthorized || retried || h.Authorizer == nil {
			return resp, err
		}
		if err := h.Authorizer.AddResponses(ctx, []*http.Response{resp}); err != nil {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
}

// errNoAuthorization is a registry's refusal to authorize an upload: the
// push's to judge, as a 401 or a 403 is.
var errNoAuthorization = errors.New("no authorization to push")

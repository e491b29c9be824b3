package manifest2llb

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRegistryError(t *testing.T) {
	cause := errors.New("context deadline exceeded")
	expired, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	if got, want := RegistryError(expired, "registry.example:5000/app:1", cause).Error(), "the registry registry.example:5000 did not answer within 30s"; got != want {
		t.Errorf("after the bound: %q, want %q", got, want)
	}
	if got := RegistryError(expired, "busybox", cause).Error(); got != "the registry docker.io did not answer within 30s" {
		t.Errorf("Docker Hub image: %q", got)
	}
	live, cancel := WithRegistryTimeout(context.Background())
	defer cancel()
	if got := RegistryError(live, "registry.example/app", cause); got != cause {
		t.Errorf("within the bound: %v, want the read's own error", got)
	}
	if got := RegistryError(live, "registry.example/app", status.Error(codes.DeadlineExceeded, "stream terminated")); got == nil || got.Error() != "the registry registry.example did not answer within 30s" {
		t.Errorf("the builder's end of the deadline answering first: %v", got)
	}
	if got, want := UploadError(expired, "registry.example:5000/app:1", cause).Error(), "the registry registry.example:5000 did not take an upload within 30s"; got != want {
		t.Errorf("an upload after the bound: %q, want %q", got, want)
	}
	if got := UploadError(live, "registry.example/app", cause); got != cause {
		t.Errorf("an upload within the bound: %v, want its own error", got)
	}
	if got := RegistryError(expired, "registry.example/app", nil); got != nil {
		t.Errorf("no error: %v", got)
	}
}

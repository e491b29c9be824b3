package hostbuild

import (
	"context"
	"fmt"
	"io"

	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
)

// ImageLoader is what loading an archive asks of the engine;
// client.APIClient has it.
type ImageLoader interface {
	ImageLoad(ctx context.Context, input io.Reader, opts ...client.ImageLoadOption) (client.ImageLoadResult, error)
}

var _ ImageLoader = (client.APIClient)(nil)

// LoadIntoEngine loads a docker archive into the engine, as `docker load`
// does, and returns the engine's error when it refuses it.
func LoadIntoEngine(ctx context.Context, engine ImageLoader, archive io.Reader) error {
	res, err := engine.ImageLoad(ctx, archive, client.ImageLoadWithQuiet(true))
	if err != nil {
		return err
	}
	defer res.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(res, io.Discard, 0, false, nil); err != nil {
		return fmt.Errorf("the engine refused the image: %w", err)
	}
	return nil
}

package gatewaytest

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/gateway/client"
	"github.com/storepack/storepack/frontend/inbuilder"
	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
)

// TestHelperScan: the helper's scan of a transfer runs in-process and its
// output reads through the result; a path the transfer lacks is refused,
// as the builder's helper would not find it.
func TestHelperScan(t *testing.T) {
	s := storetest.NewHostStore(t)
	c := &Client{Locals: map[string]string{"store": s.Dir}, Frontend: "storepack:test", WorkDir: t.TempDir()}
	helper := inbuilder.Helper{Image: llb.Image(c.Frontend), Binary: "/bin/storepack-frontend"}
	transfer := llb.Local("store", llb.IncludePatterns([]string{s.App.Base()}))
	solve := func(paths ...store.Path) (client.Reference, error) {
		st, err := helper.Scan(inbuilder.FindHashes, []layerllb.Part{{State: transfer, Dir: "/", Paths: paths}}, false, "scan")
		if err != nil {
			t.Fatal(err)
		}
		def, err := st.Marshal(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Solve(context.Background(), client.SolveRequest{Definition: def.ToPB()})
		if err != nil {
			return nil, err
		}
		return res.SingleRef()
	}

	ref, err := solve(s.App)
	if err != nil {
		t.Fatal(err)
	}
	data, err := ref.ReadFile(context.Background(), client.ReadRequest{Filename: inbuilder.ResultFile})
	if err != nil {
		t.Fatal(err)
	}
	scans, err := inbuilder.DecodeScanResult(data, "the test store")
	if err != nil {
		t.Fatal(err)
	}
	if hashes := scans[s.App.String()].Hashes; !slices.Contains(hashes, s.Lib.Hash) || !slices.Contains(hashes, s.Data.Hash) {
		t.Errorf("hashes found in the app %v, want the library's and the data's", hashes)
	}
	if ran := c.Ran(); !slices.Equal(ran, []inbuilder.Command{inbuilder.FindHashes}) {
		t.Errorf("ran %q, want find-hashes", ran)
	}

	if _, err := solve(s.App, s.Lib); err == nil || !strings.Contains(err.Error(), s.Lib.String()) {
		t.Errorf("a path outside the transfer: err = %v, want it named", err)
	}
}

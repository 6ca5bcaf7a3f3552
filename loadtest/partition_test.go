package loadtest_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/loadtest"
)

// Issue 6, acceptance (network lab): real `swarmtv peer` processes behind
// real NATs in two groups of sites, the origin and the tracker with the
// first; the internet is cut between the groups for 30 s and healed. The
// side that still reaches the origin keeps playing through the cut; each
// side closes its own overlay ring; after the heal the peers form one
// ring again and the cut-off side plays again within a bound. Nothing of
// the lab is left behind.
func TestPartition(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "swarmtv")
	if out, err := exec.Command("nice", "go", "build", "-o", bin, "../cmd/swarmtv").CombinedOutput(); err != nil {
		t.Fatalf("building swarmtv: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := loadtest.RunPartition(ctx, loadtest.PartitionConfig{Binary: bin, Progress: testWriter{t}, LogDir: os.Getenv("SWARMTV_ARTIFACTS")})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep.Table())
	if n, _ := filepath.Glob("/run/netns/" + rep.LabPrefix + "*"); len(n) > 0 {
		t.Errorf("namespaces left behind: %v", n)
	}
	if rep.SplitMS == 0 {
		t.Errorf("the rings did not split at the cut: %s", rep.Note)
	}
	if rep.MergeMS == 0 || rep.MergeMS > 30_000 {
		t.Errorf("one ring again %d ms after the heal, want within 30 s", rep.MergeMS)
	}
	if rep.OriginSideContinuity < 0.99 {
		t.Errorf("the origin's side played %.4f of the slices due over the cut, want ≥ 0.99", rep.OriginSideContinuity)
	}
	if rep.ResumedMS == 0 || rep.ResumedMS > 30_000 {
		t.Errorf("the cut-off side played again %d ms after the heal, want within 30 s", rep.ResumedMS)
	}
	for _, p := range rep.PeerList {
		// 30 s of 100 ms slices: the origin's side plays nearly all.
		if p.Side == "origin" && p.Played < 270 {
			t.Errorf("%s (origin's side) played %d slices over the 30 s cut", p.Site, p.Played)
		}
	}
}

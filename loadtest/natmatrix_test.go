package loadtest_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/loadtest"
	"github.com/swarmtv/swarmtv/tracker"
)

// The NAT matrix with real swarmtv processes behind real NATs (issue
// #5's acceptance): no pair fails; cone pairs in any mix and full or
// restricted cone with symmetric connect directly; port-restricted or
// symmetric with symmetric are relayed; the child of every pair (a peer
// behind each NAT type) plays the stream with chunks from its parent;
// two hosts behind one NAT meet directly over their LAN addresses; a
// child behind a symmetric NAT whose uplink bounces notices the new
// mapping and keeps playing; a symmetric NAT that allocates ports in
// sequence is punched from a port-restricted cone by port prediction.
// Nothing of the lab is left behind.
func TestNATMatrix(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "swarmtv")
	if out, err := exec.Command("nice", "go", "build", "-o", bin, "../cmd/swarmtv").CombinedOutput(); err != nil {
		t.Fatalf("building swarmtv: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := loadtest.RunNATMatrix(ctx, loadtest.NATMatrixConfig{Binary: bin, Parallel: 3, Progress: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep.Table())
	if n, _ := filepath.Glob("/run/netns/" + rep.LabPrefix + "*"); len(n) > 0 {
		t.Errorf("namespaces left behind: %v", n)
	}
	if rep.NAT == nil || rep.NAT.Failed != 0 {
		t.Errorf("failed pairs: %+v", rep.NAT)
	}
	if len(rep.Pairs) != 13 {
		t.Fatalf("%d pairs, want 10 NAT type pairs, 2 port prediction pairs and the LAN pair", len(rep.Pairs))
	}
	seenNAT := map[string]bool{}
	for _, p := range rep.Pairs {
		if p.Outcome != p.Expected || !p.Played {
			t.Errorf("%s ↔ %s: %s (expected %s), played %v %s", p.A, p.B, p.Outcome, p.Expected, p.Played, p.Note)
		}
		cone := func(s string) bool { return strings.HasPrefix(s, "fullcone") || strings.HasPrefix(s, "restricted") }
		sym := func(s string) bool { return strings.HasPrefix(s, "symmetric") }
		seq := func(s string) bool { return strings.HasPrefix(s, "symmetric-sequential") }
		switch {
		case !sym(p.A) && !sym(p.B), cone(p.A) && sym(p.B), !sym(p.A) && seq(p.B):
			if p.Expected != tracker.OutcomeDirect {
				t.Errorf("%s ↔ %s expected %s by the pairing rule, want direct", p.A, p.B, p.Expected)
			}
		default:
			if p.Expected != tracker.OutcomeRelayed {
				t.Errorf("%s ↔ %s expected %s by the pairing rule, want relayed", p.A, p.B, p.Expected)
			}
		}
		if strings.HasSuffix(p.A, "/lan") && p.Outcome != tracker.OutcomeDirect {
			t.Errorf("hosts behind one NAT: %s", p.Outcome)
		}
		if p.Played {
			seenNAT[strings.Split(p.B, "#")[0]] = true
		}
	}
	for _, n := range []string{"fullcone", "restricted", "portrestricted", "symmetric"} {
		if !seenNAT[n] {
			t.Errorf("no peer behind a %s NAT played the stream", n)
		}
	}
	// `swarmtv peer --nat-check` names every NAT (a sequential
	// symmetric NAT is symmetric to RFC 5780).
	for site, class := range rep.NATCheck {
		want, _, _ := strings.Cut(site, "#")
		want = strings.TrimSuffix(want, "-sequential")
		if class != want {
			t.Errorf("nat-check behind %s printed class %q, want %q", site, class, want)
		}
	}
	if len(rep.NATCheck) != 5 {
		t.Errorf("nat-check ran behind %d NATs, want 5: %v", len(rep.NATCheck), rep.NATCheck)
	}
	if b := rep.Bounce; b == nil || !b.Noticed || !b.Reprobed || !b.Continued {
		t.Errorf("WAN bounce: %+v", b)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

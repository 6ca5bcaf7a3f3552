package sim

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// The scenario files of the demo's setup are LikeDemo's configurations,
// option for option.
func TestDemoScenariosAreLikeDemo(t *testing.T) {
	for _, n := range []int{3, 10} {
		file, err := LoadScenario(fmt.Sprintf("../../scenarios/demo-%d.yaml", n))
		if err != nil {
			t.Fatal(err)
		}
		want, err := LikeDemo(n, 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got, w := file.Args(), want.Args(); !slices.Equal(got, w) {
			for i := range got {
				if got[i] != w[i] {
					t.Errorf("scenarios/demo-%d.yaml: %s, LikeDemo: %s", n, got[i], w[i])
				}
			}
		}
	}
	if _, err := LikeDemo(0, time.Minute); !errors.Is(err, ErrConfig) {
		t.Errorf("LikeDemo(0): err %v, want ErrConfig", err)
	}
}

// In the demo's setup the viewers join one after another, each once the
// one before has played, and the trees take the demo's shape: with 3
// peers and K = 3 each stripe goes from the origin to one peer, which
// feeds the two others.
func TestLikeDemoRun(t *testing.T) {
	cfg, err := LikeDemo(3, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var joins []int64
	s.debug = func(e *event) {
		if e.kind == evJoin && e.aux == 1 {
			joins = append(joins, e.at)
		}
	}
	r, err := s.Run()
	if err != nil {
		t.Fatal(err)
	}
	if len(joins) != 3 || joins[0] != 0 {
		t.Fatalf("joins at %v, want 3 from 0", joins)
	}
	for i := 1; i < len(joins); i++ {
		if gap := joins[i] - joins[i-1]; gap <= 0 || gap > int64(3*time.Second) {
			t.Errorf("join %d came %v after the one before; want once it played (within 3 s)", i, time.Duration(gap))
		}
		if prev := s.peers[i]; joins[i] != prev.firstPlay+demoJoinGap {
			t.Errorf("join %d at %v, want %v after peer %d's first play at %v", i, time.Duration(joins[i]), time.Duration(demoJoinGap), i, time.Duration(prev.firstPlay))
		}
	}
	want := [][]int{nil, {0, 2, 3}, {1, 0, 3}, {1, 2, 0}}
	if got := s.StripeParents(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("stripe parents %v, want %v", got, want)
	}
	if r.TreeDepth == nil || r.TreeDepth.Max != 2 {
		t.Errorf("tree depth %+v, want max 2", r.TreeDepth)
	}
}

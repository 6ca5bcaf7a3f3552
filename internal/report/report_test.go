package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestEveryFieldPresent(t *testing.T) {
	r := New("demo", "default")
	path := filepath.Join(t.TempDir(), "r.json")
	if err := r.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"schema", "kind", "scenario", "seed", "peers", "duration_s", "stream_kbps",
		"player_bytes", "origin_egress_bytes", "p2p_bytes", "savings", "continuity", "stalls",
		"rebuffer_ratio", "startup_ms", "lag_ms", "repair_ms", "tree_depth", "cross_isp_bytes",
		"cross_isp_lower_bound_bytes", "nat", "control_overhead", "trace_hash", "overlay", "placement", "latency", "mesh", "steady", "wall_s"} {
		if _, ok := m[f]; !ok {
			t.Errorf("field %s missing", f)
		}
	}
	if m["schema"] != Schema {
		t.Errorf("schema = %v", m["schema"])
	}
}

func TestPercentiles(t *testing.T) {
	if Of(nil) != nil {
		t.Fatal("percentiles of nothing")
	}
	s := make([]float64, 100)
	for i := range s {
		s[i] = float64(100 - i) // 100..1, unsorted on purpose
	}
	p := Of(s)
	if p.P50 != 50 || p.P95 != 95 || p.P99 != 99 {
		t.Fatalf("got %+v", p)
	}
	if got := *Savings(10, 100); got != 0.9 {
		t.Fatalf("savings %v", got)
	}
	if Savings(1, 0) != nil {
		t.Fatal("savings with nothing played")
	}
}

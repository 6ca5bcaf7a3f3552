package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// swarmtv sim --like-demo N models the demo's setup; flags override it;
// it does not combine with --scenario.
func TestSimLikeDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "s.json")
	out, err := exec.CommandContext(ctx, binary, "sim", "--like-demo", "3", "--duration", "6s", "--quiet", "--report", path).CombinedOutput()
	if err != nil {
		t.Fatalf("sim --like-demo 3: %v\n%s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Scenario   string   `json:"scenario"`
		Peers      int      `json:"peers"`
		DurationS  float64  `json:"duration_s"`
		StreamKbps float64  `json:"stream_kbps"`
		Savings    *float64 `json:"savings"`
		TreeDepth  *struct {
			Max int `json:"max"`
		} `json:"tree_depth"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Scenario != "demo-3" || r.Peers != 3 || r.DurationS != 6 || r.StreamKbps != 1130 {
		t.Errorf("report %s: want scenario demo-3, 3 peers, 6 s (the flag), 1130 kbit/s", b)
	}
	if r.Savings == nil || *r.Savings <= 0 || r.TreeDepth == nil || r.TreeDepth.Max != 2 {
		t.Errorf("report %s: want savings > 0 and trees of depth 2", b)
	}
	out, err = exec.CommandContext(ctx, binary, "sim", "--like-demo", "3", "--scenario", "../../scenarios/demo-3.yaml").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not both") {
		t.Errorf("--like-demo with --scenario: err %v, output %q; want a refusal", err, out)
	}
	out, err = exec.CommandContext(ctx, binary, "sim", "--like-demo", "500").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "1..200") {
		t.Errorf("--like-demo 500: err %v, output %q; want a refusal naming the range", err, out)
	}
}

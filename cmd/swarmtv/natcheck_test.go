package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// `swarmtv peer --nat-check` asks the tracker where its STUN service
// is, probes from a socket like the peer's QUIC socket and prints the
// report (on loopback: no NAT, class open); a STUN server that does not
// answer is a clear error. Real NATs are checked in loadtest/netlab and
// by `swarmtv loadtest natmatrix`.
func TestNATCheck(t *testing.T) {
	s := startTracker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "peer", "--tracker", s.trackerURL, "--nat-check").CombinedOutput()
	if err != nil {
		t.Fatalf("nat-check: %v\n%s", err, out)
	}
	for _, want := range []string{"STUN server:    127.0.0.1:", "mapped address: 127.0.0.1:", "class:          open", "candidates:     127.0.0.1:", "port preserved: true"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("nat-check output lacks %q:\n%s", want, out)
		}
	}
	// A STUN server that is not there (a port nobody listens on).
	port := freePort(t)
	out, err = exec.CommandContext(ctx, binary, "peer", "--nat-check", "--stun", fmt.Sprintf("127.0.0.1:%d", port)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no answer from the STUN server") {
		t.Fatalf("nat-check without a STUN server: %v\n%s", err, out)
	}
	out, err = exec.CommandContext(ctx, binary, "peer", "--tracker", s.trackerURL, "--parent", "someone@somewhere").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--parent \"someone@somewhere\": want ID@HOST:PORT") {
		t.Fatalf("peer --parent garbage: %v\n%s", err, out)
	}
	out, err = exec.CommandContext(ctx, binary, "tracker", "--listen", "127.0.0.1:0", "--stun", "nonsense").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--stun \"nonsense\": want IP:port") {
		t.Fatalf("tracker --stun nonsense: %v\n%s", err, out)
	}
}

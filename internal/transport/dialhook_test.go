package transport

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm"
)

// A dial hook picks the address a dial goes to and hears its result;
// the fingerprint check still applies to the address it picked.
func TestDialHook(t *testing.T) {
	a, b, c := newEndpoint(t), newEndpoint(t), newEndpoint(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		for {
			if _, err := b.Accept(ctx); err != nil {
				return
			}
		}
	}()
	results := make(chan error, 2)
	var asked []string
	a.SetDialHook(func(_ context.Context, addr string, id swarm.NodeID) (string, func(error)) {
		asked = append(asked, addr)
		return b.Addr().String(), func(err error) { results <- err }
	})
	conn, err := a.Dial(ctx, "192.0.2.1:9", b.ID())
	if err != nil {
		t.Fatalf("dial through the hook: %v", err)
	}
	conn.CloseWithError(CodeNormal, "")
	if err := <-results; err != nil {
		t.Fatalf("hook heard %v for a good dial", err)
	}
	// The hook sends a dial for c to b: the fingerprint check fails and
	// the hook hears it.
	if _, err := a.Dial(ctx, c.Addr().String(), c.ID()); !errors.Is(err, ErrFingerprint) {
		t.Fatalf("dial to the wrong node: %v, want ErrFingerprint", err)
	}
	if err := <-results; err == nil {
		t.Fatal("hook heard success for a failed dial")
	}
	if len(asked) != 2 || asked[0] != "192.0.2.1:9" {
		t.Fatalf("hook asked for %v", asked)
	}
	a.SetDialHook(nil)
	if _, err := a.Dial(ctx, c.Addr().String(), c.ID()); err != nil {
		t.Fatalf("dial without the hook: %v", err)
	}
}

// Package porttest finds free loopback ports for tests that start real
// servers on ports they must name in advance.
package porttest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
)

// Block returns a TCP port on 127.0.0.1 such that it and the n-1 ports
// after it are free at the time of the call. The ports lie below the
// kernel's ephemeral range (32768 up), so no connection another test
// opens meanwhile takes one of them; a demo serves peer i's RTSP on the
// returned port + i.
func Block(t testing.TB, n int) int {
	t.Helper()
	const lo, hi = 20000, 32000
	for range 200 {
		base := lo + rand.IntN(hi-lo-n)
		free := true
		for p := base; p < base+n && free; p++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				free = false
				continue
			}
			ln.Close()
		}
		if free {
			return base
		}
	}
	t.Fatalf("no %d free ports in a row between %d and %d", n, lo, hi)
	return 0
}

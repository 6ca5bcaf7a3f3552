package porttest

import (
	"fmt"
	"net"
	"testing"
)

func TestBlockIsFree(t *testing.T) {
	base := Block(t, 4)
	if base < 20000 || base+4 > 32000 {
		t.Fatalf("block at %d, want within [20000, 32000)", base)
	}
	for p := base; p < base+4; p++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d of the block: %v", p, err)
		}
		ln.Close()
	}
}

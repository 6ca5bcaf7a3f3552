package netlab

import (
	"context"
	"fmt"
	"strings"
)

// SetLoss makes site's router drop pct percent of the packets it
// forwards, in both directions, at random (nftables numgen; LAB.md:
// dropping in the forwarding path loses packets, dropping on a host's own
// output makes sendto fail instead). 0 removes the loss.
func (l *Lab) SetLoss(ctx context.Context, s *Site, pct int) error {
	if pct < 0 || pct > 100 {
		return fmt.Errorf("netlab: loss %d%% out of range 0..100", pct)
	}
	rule := ""
	switch {
	case pct == 100:
		rule = "drop"
	case pct > 0:
		rule = fmt.Sprintf("numgen random mod 100 < %d drop", pct)
	}
	return s.Router.nft(ctx, fmt.Sprintf(`table ip swarmtvloss
delete table ip swarmtvloss
table ip swarmtvloss {
	chain forward {
		type filter hook forward priority filter - 10; policy accept;
		%s
	}
}
`, rule))
}

// Partition cuts the internet between two groups of sites (the public
// host counts as a site when pub is in a group): the internet bridge
// drops every frame between a port of one group and a port of the other.
// Heal removes the cut. Within a group traffic flows as before.
func (l *Lab) Partition(ctx context.Context, a, b []*Site, pubInA bool) error {
	port := func(s *Site) string {
		for i, x := range l.Sites {
			if x == s {
				return fmt.Sprintf("p%d", i+1)
			}
		}
		return ""
	}
	var pa, pb []string
	for _, s := range a {
		pa = append(pa, `"`+port(s)+`"`)
	}
	for _, s := range b {
		pb = append(pb, `"`+port(s)+`"`)
	}
	if pubInA {
		pa = append(pa, `"p0"`)
	} else {
		pb = append(pb, `"p0"`)
	}
	if len(pa) == 0 || len(pb) == 0 {
		return fmt.Errorf("netlab: a partition needs two non-empty groups")
	}
	A, B := strings.Join(pa, ", "), strings.Join(pb, ", ")
	return l.Internet.nft(ctx, fmt.Sprintf(`table bridge swarmtvcut
delete table bridge swarmtvcut
table bridge swarmtvcut {
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname { %s } oifname { %s } drop
		iifname { %s } oifname { %s } drop
	}
}
`, A, B, B, A))
}

// Heal removes a partition.
func (l *Lab) Heal(ctx context.Context) error {
	return l.Internet.nft(ctx, "table bridge swarmtvcut\ndelete table bridge swarmtvcut\n")
}

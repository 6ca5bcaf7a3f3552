package overlay

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the testdata scripts")

// TestScripts runs the interaction scripts in testdata/*.txt on a small
// mini network with a fixed 10ms latency. A script is a series of blocks:
//
//	# comments
//	command args
//	----
//	expected output
//	<blank line>
//
// Commands:
//
//	nodes a=1000 b=2000 ...   create nodes with hex IDs (not yet joined)
//	join b via a              b joins through a
//	tick 2s                   run the network; prints the events
//	fail c                    crash c (its messages fail from now on)
//	lookup a 2500             a looks up a key; answered in a later tick
//	contact a c               the driver tells a of c (a tracker hint)
//	partition {a b} {c d}     cut the network in parts
//	heal                      join the parts again
//	ring                      print every live node's state and check the ring
//	local a 10 0.9            a's own upload and health for the estimates
//	estimates                 print every live node's gossip estimates
//	trace on|off              print every message sent during ticks
//	config key=value ...      for nodes created later: successors, fanout
//
// go test ./overlay -run TestScripts -rewrite regenerates the expected
// output; review the diff.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runScript(t, file) })
	}
}

type scriptBlock struct {
	comments []string
	cmd      string
	want     string
}

func parseScript(t *testing.T, text string) []scriptBlock {
	var blocks []scriptBlock
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); {
		var b scriptBlock
		for i < len(lines) && (strings.HasPrefix(lines[i], "#") || strings.TrimSpace(lines[i]) == "") {
			if strings.HasPrefix(lines[i], "#") {
				b.comments = append(b.comments, lines[i])
			}
			i++
		}
		if i == len(lines) {
			break
		}
		b.cmd = lines[i]
		i++
		if i >= len(lines) || lines[i] != "----" {
			t.Fatalf("line %d: want ---- after %q", i+1, b.cmd)
		}
		i++
		var out []string
		for i < len(lines) && lines[i] != "" {
			out = append(out, lines[i])
			i++
		}
		b.want = strings.Join(out, "\n")
		blocks = append(blocks, b)
	}
	return blocks
}

func runScript(t *testing.T, file string) {
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blocks := parseScript(t, string(text))
	r := newScriptRunner(t)
	var rewritten strings.Builder
	for _, b := range blocks {
		got := r.exec(b.cmd)
		if got == "" {
			got = "ok"
		}
		if *rewrite {
			for _, c := range b.comments {
				rewritten.WriteString(c + "\n")
			}
			fmt.Fprintf(&rewritten, "%s\n----\n%s\n\n", b.cmd, got)
			continue
		}
		if got != b.want {
			t.Fatalf("%s: %s\ngot:\n%s\nwant:\n%s", file, b.cmd, got, b.want)
		}
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(strings.TrimRight(rewritten.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type scriptRunner struct {
	t     *testing.T
	s     *simNet
	names map[string]*simNode
	trace bool
	out   []string
	succs int
	fan   int
}

func newScriptRunner(t *testing.T) *scriptRunner {
	r := &scriptRunner{t: t, s: newSimNet(t, 1), names: map[string]*simNode{}}
	r.s.minLat, r.s.maxLat = 10*time.Millisecond, 10*time.Millisecond
	r.s.cfg = func(c *Config) {
		if r.succs > 0 {
			c.Successors = r.succs
		}
		if r.fan != 0 {
			c.MergeFanout = r.fan
		}
	}
	r.s.onEvent = func(at time.Time, sn *simNode, e Event) {
		r.out = append(r.out, fmt.Sprintf("%s %s: %s", stamp(at), sn.node.Self(), fmtEvent(e)))
	}
	r.s.onMsg = func(at time.Time, from, to Peer, m Message) {
		if r.trace {
			r.out = append(r.out, fmt.Sprintf("%s %s -> %s %s", stamp(at), from, to, fmtMsg(m)))
		}
	}
	return r
}

func stamp(at time.Time) string { return fmt.Sprintf("%.3fs", at.Sub(epoch).Seconds()) }

func fmtEvent(e Event) string {
	switch e := e.(type) {
	case Joined:
		return "joined, successor " + e.Succ.String()
	case JoinFailed:
		return "join through " + e.Via.String() + " failed"
	case LookupDone:
		if e.Err != nil {
			return fmt.Sprintf("lookup %x failed: %v", uint64(e.Key), e.Err)
		}
		return fmt.Sprintf("lookup %x -> %s in %d hops", uint64(e.Key), e.Owner, e.Hops)
	case MemberFailed:
		return "member failed: " + e.Peer.String()
	case PartnerFound:
		return "partner " + e.Peer.String()
	case RingMerge:
		return "another ring found through " + e.Contact.String() + ", successor there " + e.Succ.String()
	}
	return fmt.Sprintf("%T", e)
}

func fmtPeers(ps []Peer) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return "[" + strings.Join(s, " ") + "]"
}

func fmtMsg(m Message) string {
	switch m := m.(type) {
	case *FindSuccessor:
		return fmt.Sprintf("FindSuccessor %s %x origin=%s hops=%d", m.Kind, uint64(m.Key), m.Origin, m.Hops)
	case *Found:
		return fmt.Sprintf("Found %s %x pred=%s succ=%s hops=%d", m.Kind, uint64(m.Key), m.Pred, m.Succ, m.Hops)
	case *GetPred:
		return "GetPred"
	case *PredReply:
		p := "none"
		if m.HasPred {
			p = m.Pred.String()
		}
		return fmt.Sprintf("PredReply pred=%s succs=%s", p, fmtPeers(m.Succs))
	case *Notify:
		return "Notify"
	case *SuccHint:
		return "SuccHint " + m.Cand.String()
	case *Ping:
		return "Ping"
	case *Pong:
		return "Pong"
	case *MergeHint:
		return "MergeHint " + m.Contact.String()
	case *Gossip:
		return fmt.Sprintf("Gossip epoch=%d", m.Epoch)
	}
	return fmt.Sprintf("%T", m)
}

func (r *scriptRunner) node(name string) *simNode {
	sn, ok := r.names[name]
	if !ok {
		r.t.Fatalf("unknown node %q", name)
	}
	return sn
}

func (r *scriptRunner) exec(line string) string {
	f := strings.Fields(line)
	r.out = nil
	s := r.s
	switch f[0] {
	case "nodes":
		for _, a := range f[1:] {
			name, hex, ok := strings.Cut(a, "=")
			id, err := strconv.ParseUint(hex, 16, 64)
			if !ok || err != nil {
				r.t.Fatalf("nodes: bad %q", a)
			}
			sn := s.add(ID(id), name)
			r.names[name] = sn
			s.do(sn, func(n *Node) { n.Tick(s.now) })
		}
	case "config":
		for _, a := range f[1:] {
			k, v, _ := strings.Cut(a, "=")
			x, err := strconv.Atoi(v)
			if err != nil {
				r.t.Fatalf("config: bad %q", a)
			}
			switch k {
			case "successors":
				r.succs = x
			case "fanout":
				r.fan = x
			default:
				r.t.Fatalf("config: unknown %q", k)
			}
		}
	case "join":
		a, via := r.node(f[1]), r.node(f[3])
		s.do(a, func(n *Node) { n.Join(s.now, via.node.Self()) })
	case "tick":
		d, err := time.ParseDuration(f[1])
		if err != nil {
			r.t.Fatal(err)
		}
		s.runFor(d)
	case "fail":
		s.kill(r.node(f[1]))
	case "lookup":
		key, err := strconv.ParseUint(f[2], 16, 64)
		if err != nil {
			r.t.Fatal(err)
		}
		s.do(r.node(f[1]), func(n *Node) { n.Lookup(s.now, ID(key)) })
	case "contact":
		b := r.node(f[2])
		s.do(r.node(f[1]), func(n *Node) { n.Contact(s.now, b.node.Self()) })
	case "partition":
		s.side = map[ID]int{}
		part := -1
		for _, a := range f[1:] {
			if strings.HasPrefix(a, "{") {
				part++
			}
			if name := strings.Trim(a, "{}"); name != "" {
				s.side[r.node(name).node.Self().ID] = part
			}
		}
	case "heal":
		s.side = nil
	case "trace":
		r.trace = f[1] == "on"
	case "ring":
		return r.ring()
	case "local":
		up, err1 := strconv.ParseFloat(f[2], 64)
		health, err2 := strconv.ParseFloat(f[3], 64)
		if err1 != nil || err2 != nil {
			r.t.Fatalf("local: bad %q", line)
		}
		r.node(f[1]).node.SetLocal(up, health)
	case "estimates":
		for _, sn := range s.live() {
			e := sn.node.Estimates()
			r.out = append(r.out, fmt.Sprintf("%s: peers %.2f upload %.2f health %.2f epoch %d final %v",
				sn.node.Self(), e.Peers, e.MeanUpload, e.Health, e.Epoch, e.Final))
		}
	default:
		r.t.Fatalf("unknown command %q", line)
	}
	return strings.Join(r.out, "\n")
}

func (r *scriptRunner) ring() string {
	s := r.s
	for _, sn := range s.live() {
		n := sn.node
		p, ok := n.Predecessor()
		ps := "none"
		if ok {
			ps = p.String()
		}
		fingers := map[string]bool{}
		var fs []string
		for i, f := range n.fingers {
			if n.fingerOK[i] && !fingers[f.String()] {
				fingers[f.String()] = true
				fs = append(fs, f.String())
			}
		}
		line := fmt.Sprintf("%s: pred %s succs %s fingers [%s]", n.Self(), ps, fmtPeers(n.succs), strings.Join(fs, " "))
		if rem := n.Remembered(); len(rem) > 0 {
			line += " remembered " + fmtPeers(rem)
		}
		r.out = append(r.out, line)
	}
	sides := []int{-1}
	if s.side != nil {
		sides = nil
		for _, v := range s.side {
			if !slices.Contains(sides, v) {
				sides = append(sides, v)
			}
		}
		slices.Sort(sides)
	}
	for _, side := range sides {
		label := "ring"
		if side >= 0 {
			label = fmt.Sprintf("part %d", side)
		}
		if bad := s.inconsistent(side); len(bad) > 0 {
			r.out = append(r.out, label+": inconsistent: "+bad[0])
		} else {
			r.out = append(r.out, label+": consistent")
		}
	}
	return strings.Join(r.out, "\n")
}

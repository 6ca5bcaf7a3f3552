package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// NAT is a router's NAT type.
type NAT string

// NAT types. The names match nat/core's Type names.
const (
	FullCone       NAT = "fullcone"       // EIM, endpoint-independent filtering
	Restricted     NAT = "restricted"     // EIM, address-dependent filtering
	PortRestricted NAT = "portrestricted" // EIM, address-and-port-dependent filtering
	Symmetric      NAT = "symmetric"      // address-and-port-dependent mapping
	// SymmetricSequential maps like Symmetric but hands out the ports of
	// new flows in sequence (step 1), as many home routers do: its next
	// mapping can be predicted (RFC 5128 section 3.6). nat/core names it
	// symmetric.
	SymmetricSequential NAT = "symmetric-sequential"
)

// AllNATs lists the four types in a fixed order.
var AllNATs = []NAT{FullCone, Restricted, PortRestricted, Symmetric}

// Config says what to build.
type Config struct {
	// NATs has one router per entry.
	NATs []NAT
	// HostsPerNAT is the number of hosts on each router's LAN; default 1.
	HostsPerNAT int
}

// Host is one namespace of the lab.
type Host struct {
	Name string       // namespace name
	IPs  []netip.Addr // its addresses; IPs[0] is the main one
}

// Site is a NAT router and the hosts behind it.
type Site struct {
	NAT    NAT
	Router *Host // IPs[0] is the WAN (public) address
	Hosts  []*Host
}

// Lab is a built network. Close tears it down.
type Lab struct {
	Prefix   string
	Internet *Host // the bridge namespace
	Public   *Host // two public addresses, no NAT
	Sites    []*Site

	mu     sync.Mutex
	names  []string           // namespaces created, guarded by mu
	delays map[*Site]*delayer // routers holding packets (SetDelay), guarded by mu
}

// Errors.
var ErrNotRoot = errors.New("netlab: building namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)")

// New builds the lab. On error everything built so far is torn down.
func New(ctx context.Context, cfg Config) (l *Lab, err error) {
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	for _, tool := range []string{"ip", "nft", "nsenter", "sysctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("netlab: %s not found (apt-get install iproute2 nftables util-linux procps): %w", tool, err)
		}
	}
	if cfg.HostsPerNAT <= 0 {
		cfg.HostsPerNAT = 1
	}
	if len(cfg.NATs) > 200 || cfg.HostsPerNAT > 200 {
		return nil, errors.New("netlab: at most 200 routers and 200 hosts per router")
	}
	var rnd [3]byte
	rand.Read(rnd[:])
	l = &Lab{Prefix: "stv" + hex.EncodeToString(rnd[:])}
	defer func() {
		if err != nil {
			l.Close()
			l = nil
		}
	}()
	l.Internet = &Host{Name: l.Prefix + "-inet"}
	l.Public = &Host{Name: l.Prefix + "-pub", IPs: []netip.Addr{netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("203.0.113.3")}}
	all := []*Host{l.Internet, l.Public}
	for i, n := range cfg.NATs {
		s := &Site{NAT: n, Router: &Host{
			Name: fmt.Sprintf("%s-r%d", l.Prefix, i),
			IPs:  []netip.Addr{netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i)}), netip.AddrFrom4([4]byte{10, byte(i + 1), 0, 1})},
		}}
		all = append(all, s.Router)
		for j := range cfg.HostsPerNAT {
			h := &Host{Name: fmt.Sprintf("%s-h%dx%d", l.Prefix, i, j), IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, byte(i + 1), 0, byte(j + 2)})}}
			s.Hosts = append(s.Hosts, h)
			all = append(all, h)
		}
		l.Sites = append(l.Sites, s)
	}

	// Namespaces, recorded first so Close finds them whatever fails.
	var b strings.Builder
	for _, h := range all {
		fmt.Fprintf(&b, "netns add %s\n", h.Name)
	}
	l.mu.Lock()
	for _, h := range all {
		l.names = append(l.names, h.Name)
	}
	l.mu.Unlock()
	if err := ipBatch(ctx, "", b.String()); err != nil {
		return l, err
	}

	// The internet: a bridge, and one veth to every public-side namespace.
	b.Reset()
	b.WriteString("link set lo up\nlink add br0 type bridge\nlink set br0 up\n")
	fmt.Fprintf(&b, "link add p0 type veth peer name eth0 netns %s\nlink set p0 master br0\nlink set p0 up\n", l.Public.Name)
	for i, s := range l.Sites {
		fmt.Fprintf(&b, "link add p%d type veth peer name wan netns %s\nlink set p%d master br0\nlink set p%d up\n", i+1, s.Router.Name, i+1, i+1)
	}
	if err := ipBatch(ctx, l.Internet.Name, b.String()); err != nil {
		return l, err
	}
	if err := l.Internet.sysctl(ctx, "net.bridge.bridge-nf-call-iptables=0", "net.ipv6.conf.all.disable_ipv6=1"); err != nil {
		return l, err
	}

	b.Reset()
	b.WriteString("link set lo up\nlink set eth0 up\n")
	for _, ip := range l.Public.IPs {
		fmt.Fprintf(&b, "addr add %s/24 dev eth0\n", ip)
	}
	if err := ipBatch(ctx, l.Public.Name, b.String()); err != nil {
		return l, err
	}

	for _, s := range l.Sites {
		r := s.Router
		b.Reset()
		b.WriteString("link set lo up\nlink set wan up\nlink add lan type bridge\nlink set lan up\n")
		fmt.Fprintf(&b, "addr add %s/24 dev wan\naddr add %s/24 dev lan\n", r.IPs[0], r.IPs[1])
		for j, h := range s.Hosts {
			fmt.Fprintf(&b, "link add h%d type veth peer name eth0 netns %s\nlink set h%d master lan\nlink set h%d up\n", j, h.Name, j, j)
		}
		if err := ipBatch(ctx, r.Name, b.String()); err != nil {
			return l, err
		}
		if err := r.sysctl(ctx, "net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=0", "net.ipv6.conf.all.disable_ipv6=1"); err != nil {
			return l, err
		}
		if err := r.nft(ctx, Ruleset(s.NAT)); err != nil {
			return l, fmt.Errorf("netlab: %s NAT on %s: %w", s.NAT, r.Name, err)
		}
		for _, h := range s.Hosts {
			b.Reset()
			fmt.Fprintf(&b, "link set lo up\nlink set eth0 up\naddr add %s/24 dev eth0\nroute add default via %s\n", h.IPs[0], r.IPs[1])
			if err := ipBatch(ctx, h.Name, b.String()); err != nil {
				return l, err
			}
		}
	}
	return l, nil
}

// Close deletes every namespace of the lab (and with them their links,
// routes, rules and conntrack state). It is safe to call more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	names := l.names
	l.names = nil
	delays := l.delays
	l.delays = nil
	l.mu.Unlock()
	for _, d := range delays {
		d.close() // its socket would keep the namespace alive
	}
	if len(names) == 0 {
		return nil
	}
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "netns del %s\n", n)
	}
	// -force: go on after a failure, so one missing namespace does not
	// leave the others behind.
	cmd := exec.Command("ip", "-force", "-batch", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("netlab: teardown: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// Namespaces returns the names of the namespaces the lab holds.
func (l *Lab) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.names...)
}

// BounceWAN takes site's WAN link down and up again and flushes the
// router's conntrack state, as a home router losing its uplink does: every
// mapping is lost, and a symmetric NAT comes back on new ports.
func (l *Lab) BounceWAN(ctx context.Context, s *Site) error {
	if err := ipBatch(ctx, s.Router.Name, "link set wan down\nlink set wan up\n"); err != nil {
		return err
	}
	// The dynamic maps of the cone NATs hold the old mappings too.
	return s.Router.nft(ctx, Ruleset(s.NAT))
}

func ipBatch(ctx context.Context, ns, script string) error {
	args := []string{"-batch", "-"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("netlab: ip %s: %v: %s\nscript:\n%s", strings.Join(args, " "), err, bytes.TrimSpace(out), script)
	}
	return nil
}

// Command returns a command that runs inside h's namespace (via nsenter).
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=/run/netns/" + h.Name, "--", name}, args...)...)
}

func (h *Host) run(ctx context.Context, stdin string, name string, args ...string) error {
	cmd := h.Command(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("netlab: %s: %s %s: %v: %s", h.Name, name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// sysctl sets keys in h's namespace; keys the kernel lacks there (e.g.
// bridge-nf without br_netfilter loaded) are skipped.
func (h *Host) sysctl(ctx context.Context, kv ...string) error {
	for _, s := range kv {
		k, _, _ := strings.Cut(s, "=")
		path := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if _, err := os.Stat(path); err != nil {
			continue // not in this kernel; the root namespace's view is good enough to tell
		}
		if err := h.run(ctx, "", "sysctl", "-q", "-w", s); err != nil {
			return err
		}
	}
	return nil
}

func (h *Host) nft(ctx context.Context, ruleset string) error {
	return h.run(ctx, ruleset, "nft", "-f", "-")
}

// Do runs fn on an OS thread that has entered h's network namespace.
// Sockets fn opens belong to that namespace for their whole life, whoever
// uses them later. The thread is thrown away afterwards, so the switch
// never leaks to other goroutines.
func (h *Host) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the goroutine's exit ends the thread.
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + h.Name)
		if err != nil {
			errc <- fmt.Errorf("netlab: open namespace %s: %w", h.Name, err)
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			errc <- fmt.Errorf("netlab: enter namespace %s: %w", h.Name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// ListenUDP opens a UDP socket in h's namespace.
func (h *Host) ListenUDP(addr netip.AddrPort) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := h.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		return err
	})
	return c, err
}

// DialContext dials from inside h's namespace; give it to an
// http.Transport to reach services in the lab from outside.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

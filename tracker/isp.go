package tracker

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
)

// ISPTable maps IP prefixes to ISP (or ASN) names by longest-prefix
// match. The zero value is an empty table. It is read-only after loading
// and safe for concurrent use.
type ISPTable struct {
	// byLen holds the prefixes of each length, per address family
	// (index 0: IPv4 lengths 0..32, index 1: IPv6 lengths 0..128).
	byLen [2][129]map[netip.Prefix]string
	n     int
}

// ParseISPTable reads a table of "prefix,isp" lines (for example
// "100.64.0.0/10,AS64500 Example"). Blank lines and lines starting with
// '#' are skipped; spaces around the fields are trimmed. A line that is
// not a valid prefix and a non-empty name of at most 64 bytes is an
// error naming the line; so is a prefix listed twice.
func ParseISPTable(r io.Reader) (*ISPTable, error) {
	t := &ISPTable{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		pfx, name, ok := strings.Cut(text, ",")
		if !ok {
			return nil, fmt.Errorf("isp table line %d: want \"prefix,isp\", got %q", line, truncate(text))
		}
		p, err := netip.ParsePrefix(strings.TrimSpace(pfx))
		if err != nil {
			return nil, fmt.Errorf("isp table line %d: %q is not an IP prefix such as 192.0.2.0/24", line, truncate(pfx))
		}
		name = strings.TrimSpace(name)
		if name == "" || len(name) > maxLabelLen {
			return nil, fmt.Errorf("isp table line %d: the ISP name must be 1..%d bytes", line, maxLabelLen)
		}
		p = p.Masked()
		fam := 0
		if !p.Addr().Is4() {
			fam = 1
		}
		m := t.byLen[fam][p.Bits()]
		if m == nil {
			m = map[netip.Prefix]string{}
			t.byLen[fam][p.Bits()] = m
		}
		if _, dup := m[p]; dup {
			return nil, fmt.Errorf("isp table line %d: prefix %s listed twice", line, p)
		}
		m[p] = name
		t.n++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("isp table: %w", err)
	}
	return t, nil
}

// LoadISPTable reads the table file at path (see [ParseISPTable]).
func LoadISPTable(path string) (*ISPTable, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := ParseISPTable(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Len is the number of prefixes.
func (t *ISPTable) Len() int {
	if t == nil {
		return 0
	}
	return t.n
}

// Lookup returns the ISP of the longest prefix holding ip ("" and false
// when none does). IPv4-mapped IPv6 addresses match IPv4 prefixes.
func (t *ISPTable) Lookup(ip netip.Addr) (string, bool) {
	if t == nil || !ip.IsValid() {
		return "", false
	}
	ip = ip.Unmap().WithZone("")
	fam := 0
	if !ip.Is4() {
		fam = 1
	}
	for bits := ip.BitLen(); bits >= 0; bits-- {
		m := t.byLen[fam][bits]
		if m == nil {
			continue
		}
		p, _ := ip.Prefix(bits)
		if name, ok := m[p]; ok {
			return name, true
		}
	}
	return "", false
}

// ispOf names the ISP of a joining peer: by the IP of the address it
// advertises, else by the address the request came from; "" when the
// table knows neither.
func (t *ISPTable) ispOf(advertised, remote string) string {
	for _, a := range []string{advertised, remote} {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			host = a
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			if name, ok := t.Lookup(ip); ok {
				return name
			}
		}
	}
	return ""
}

package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// TestHugeAdvisorAdvisesHeap checks that a large heap allocation's
// mapping carries the huge-page advice ("hg" in its VmFlags) after one
// call, and that a second call advises again only what is new.
func TestHugeAdvisorAdvisesHeap(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage"); err != nil {
		t.Fatalf("this kernel has no transparent huge pages (%v); the simulator's advice needs them", err)
	}
	buf := make([]byte, 64<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	addr := uint64(uintptr(unsafe.Pointer(&buf[0])))
	var h hugeAdvisor
	first := h.advise()
	if first < int64(len(buf)) {
		t.Fatalf("advised %d bytes, want at least the %d of the allocation", first, len(buf))
	}
	flags, err := vmFlags(addr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(" "+flags+" ", " hg ") {
		t.Fatalf("mapping of the allocation has VmFlags %q, want hg (huge pages advised)", flags)
	}
	if n := h.advise(); n >= first {
		t.Errorf("second call advised %d bytes again, want only new mappings (first call: %d)", n, first)
	}
	buf[0] = 2 // keep buf alive past the checks
}

// vmFlags returns the VmFlags line of the mapping holding addr in
// /proc/self/smaps.
func vmFlags(addr uint64) (string, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return "", err
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uint64
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 {
			in = lo <= addr && addr < hi
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmFlags:")), nil
		}
	}
	return "", fmt.Errorf("no mapping holds %#x", addr)
}

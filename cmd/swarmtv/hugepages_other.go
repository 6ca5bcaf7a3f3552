//go:build !linux

package main

// A hugeAdvisor does nothing off Linux (see hugepages_linux.go).
type hugeAdvisor struct{}

func (h *hugeAdvisor) advise() int64 { return 0 }

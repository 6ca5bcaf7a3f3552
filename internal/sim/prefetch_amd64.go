package sim

import "unsafe"

// prefetch asks the processor to bring the n bytes from p into the cache
// (PREFETCHT0 per 64-byte line) without waiting for them. It never
// faults and changes nothing.
//
//go:noescape
func prefetch(p unsafe.Pointer, n uintptr)

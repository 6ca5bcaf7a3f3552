//go:build !linux

package sim

// allowedCPUs returns none: pinning threads is left to the system.
func allowedCPUs() []int { return nil }

// pinCPU does nothing here.
func pinCPU(int) (restore func()) { return func() {} }

package sim

import "golang.org/x/sys/unix"

// allowedCPUs returns the CPUs the calling thread may run on, in
// ascending order; none when the system does not tell.
func allowedCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var cpus []int
	for i, n := 0, set.Count(); len(cpus) < n; i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus
}

// pinCPU keeps the calling thread (the caller has locked its goroutine
// to it) on CPU cpu and returns what restores the CPUs it had. It is
// only a hint for speed: when the system refuses, nothing changes.
func pinCPU(cpu int) (restore func()) {
	var was, set unix.CPUSet
	if unix.SchedGetaffinity(0, &was) != nil {
		return func() {}
	}
	set.Set(cpu)
	if unix.SchedSetaffinity(0, &set) != nil {
		return func() {}
	}
	return func() { unix.SchedSetaffinity(0, &was) }
}

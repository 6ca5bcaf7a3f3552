package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"time"

	"github.com/swarmtv/swarmtv/internal/sim"
)

// simFlag is one simulator option as a flag: it records what was set, to
// apply over the scenario file once every flag is parsed.
type simFlag struct {
	name string
	def  string
	set  *[][2]string
}

func (f *simFlag) String() string { return f.def }

func (f *simFlag) Set(v string) error {
	probe := sim.DefaultConfig()
	if err := probe.Set(f.name, v); err != nil {
		return err
	}
	*f.set = append(*f.set, [2]string{f.name, v})
	return nil
}

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sim", "sim [--scenario FILE] [--peers N] [--duration D] [--seed S] [flags] [--report FILE]", `
The simulator runs a whole swarm — thousands of peers, the origin and the
tracker, all running swarmtv's real protocol code — on a simulated network
in virtual time: upload and download capacities, ISPs and regions, delay,
jitter and loss, NATs, churn, flash crowds, tracker failures. The same
options and seed replay a run exactly (the report's trace_hash proves it).

A scenario file (YAML, keys are the flag names; see scenarios/) sets the
options; flags given on the command line override it. Progress goes to
stderr, a summary table to stdout, the swarmtv.report/v1 JSON to --report.
If an invariant breaks (a cycle in a stripe tree, a parent above its
capacity, a played slice the origin did not make, a due slice not
accounted for) the run stops and prints the seed and the command that
replays it.

With two cores or more the run uses two: the viewers, split in two
halves, run each stretch of simulated time as long as the shortest
one-way delay (5 ms at --delay-scale 1) side by side, then the origin,
the tracker and the run's own events run it. One worker or two give the
same run, trace and report; --workers 1 keeps to one core. The overlay,
--misses and --join-sequential always run on one.`, stderr)
	var set [][2]string
	defaults := sim.DefaultConfig()
	for _, o := range sim.Options {
		fs.Var(&simFlag{name: o.Name, def: defaults.Get(o.Name), set: &set}, o.Name, o.Usage)
	}
	scenario := fs.String("scenario", "", "YAML scenario `file`; flags override its settings")
	likeDemo := fs.Int("like-demo", 0, "model swarmtv demo with `N` peers and --duration 60s (the clip's rate, its stripes and capacities, loopback, peers joining one after another; see scenarios/demo-*.yaml); flags override it")
	reportFile := fs.String("report", "", "write the swarmtv.report/v1 JSON report to this `file`")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this `file` (go tool pprof)")
	memProfile := fs.String("memprofile", "", "write a heap profile at the end of the run to this `file` (go tool pprof)")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	cfg := defaults
	if *likeDemo != 0 && *scenario != "" {
		return fmt.Errorf("give --like-demo or --scenario, not both")
	}
	if *likeDemo != 0 {
		c, err := sim.LikeDemo(*likeDemo, 60*time.Second)
		if err != nil {
			return err
		}
		cfg = c
	}
	if *scenario != "" {
		c, err := sim.LoadScenario(*scenario)
		if err != nil {
			return err
		}
		cfg = c
	}
	for _, kv := range set {
		if err := cfg.Set(kv[0], kv[1]); err != nil {
			return err
		}
	}
	s, err := sim.New(cfg)
	if err != nil {
		return err
	}
	if !*quiet {
		s.Progress = stderr
	}
	s.Cancel = ctx.Done()
	for _, n := range s.Notes() {
		fmt.Fprintf(stderr, "sim: note: %s\n", n)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	tuneGC(cfg.Peers)
	stopAdvice := adviseHugePagesEvery(hugeAdviceInterval)
	start := time.Now()
	r, err := s.Run()
	stopAdvice()
	if err != nil {
		return err
	}
	r.WallS = time.Since(start).Seconds()
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			return err
		}
	}
	sim.WriteSummary(stdout, r, s.Events())
	fmt.Fprintf(stdout, "events/s          %.0f\ntransient cycles  %d (parent pointers, dissolved within two heartbeats)\n",
		float64(s.Events())/max(r.WallS, 1e-9), s.TransientCycles())
	for _, n := range s.Notes() {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	if *reportFile != "" {
		if err := r.WriteFile(*reportFile); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "report written to %s\n", *reportFile)
	}
	return nil
}

// simMemoryLimit is the heap the simulator lets itself grow to before
// the garbage collector works hard (the scale target is 4 GiB peak at
// 10,000 peers), unless the peers' own state needs more: then
// simPeerMemory per peer. A limit below the live heap would keep the
// collector running without end (the live heap was about 47 KB a peer
// at 5,000 peers, most of it their windows, and about 100 KB a peer at
// 100,000 peers with the partner mesh: 10.7 GB peak RSS).
const (
	simMemoryLimit = 3 << 30
	simPeerMemory  = 160 << 10
)

// tuneGC trades memory for speed unless GOGC or GOMEMLIMIT is set: a
// simulation allocates short-lived chunks and events at a high rate, and
// the default GOGC=100 spends a third of the run collecting (1,000 peers
// × 30 s: 19 s wall, 9 s with GOGC=400).
func tuneGC(peers int) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(max(simMemoryLimit, int64(peers)*simPeerMemory))
	}
}

// hugeAdviceInterval is how often a run advises its new heap mappings
// to use huge pages: the heap grows fastest as the peers join, each new
// arena's pages touched before the next advice stay small.
const hugeAdviceInterval = 50 * time.Millisecond

// hugeAdviceIdle is the longest a run waits between advices while its
// heap does not grow: reading the process's mappings 20 times a second
// cost CPU for nothing once the heap had stopped growing.
const hugeAdviceIdle = time.Second

// adviseHugePagesEvery advises huge pages (hugeAdvisor) now and then
// every d until the returned stop is called. While a call finds nothing
// new to advise, the next waits twice as long, up to hugeAdviceIdle;
// once the heap grows again, d.
func adviseHugePagesEvery(d time.Duration) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	var h hugeAdvisor
	h.advise()
	go func() {
		defer close(exited)
		wait := d
		t := time.NewTimer(wait)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if h.advise() > 0 {
					wait = d
				} else {
					wait = min(2*wait, max(d, hugeAdviceIdle))
				}
				t.Reset(wait)
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// writeHeapProfile writes the live heap (after a collection) to file.
func writeHeapProfile(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/swarmtv/swarmtv/internal/report"
	"github.com/swarmtv/swarmtv/loadtest"
)

func runLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "partition" {
		return runLoadtestPartition(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "natmatrix" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(stdout, loadtestUsage)
			return nil
		}
		fmt.Fprint(stderr, loadtestUsage)
		return errUsage
	}
	fs := newFlags("loadtest natmatrix", "loadtest natmatrix [--report FILE] [flags]", `
Builds an emulated internet of network namespaces on this machine: a
public host running a tracker (STUN on two addresses, relay) and one
origin per pair, and two NAT routers of each type (full cone, restricted
cone, port-restricted cone, symmetric; nftables) with hosts behind them.
For every pair of NAT types it runs real 'swarmtv peer' processes, one
behind each NAT, the child placed under the parent, and checks that the
child plays the stream with chunks from its parent; it prints per pair
whether the connection was direct (punched), relayed or failed and how
long it took to connect. Two hosts behind one NAT must meet over their
LAN addresses, and a symmetric NAT's uplink is bounced under a playing
child. Everything is torn down at the end, also on failure.

Needs root, iproute2, nftables and nsenter (util-linux).`, stderr)
	reportFile := fs.String("report", "", "write the swarmtv.report/v1 JSON (with a pairs list) to `FILE`")
	parallel := fs.Int("parallel", 4, "pairs run at once")
	noBounce := fs.Bool("no-bounce", false, "skip the WAN bounce scenario")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	loss := fs.Int("loss", 0, "every NAT router drops this `percent` of the packets it forwards (0..50)")
	delay := fs.Duration("delay", 0, "every NAT router holds the packets it forwards this long (each way; NFQUEUE, needs iptables)")
	jitter := fs.Duration("jitter", 0, "± this much, uniformly, on top of --delay")
	if err := parseFlags(fs, args[1:], stdout); err != nil {
		return err
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the swarmtv binary: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rep, err := loadtest.RunNATMatrix(ctx, loadtest.NATMatrixConfig{Binary: bin, Parallel: *parallel, NoBounce: *noBounce, Progress: stderr, LossPct: *loss, Delay: *delay, Jitter: *jitter})
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, rep.Table())
	if *reportFile != "" {
		if err := report.WriteJSON(*reportFile, rep); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	if rep.NAT.Failed > 0 {
		return errors.New("some pairs failed to connect")
	}
	return nil
}

const loadtestUsage = `Usage: swarmtv loadtest <scenario> [flags]

Scenarios:
  natmatrix   real peers behind real NATs of every type (network namespaces; root)
  partition   real peers in two groups of sites cut apart, then healed (network namespaces; root)
`

func runLoadtestPartition(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("loadtest partition", "loadtest partition [--report FILE] [flags]", `
Builds an emulated internet of network namespaces on this machine: a
public host running a tracker and an origin (the bundled clip, 4 stripes),
and four NAT routers (full cone, restricted, port-restricted, full cone)
with real 'swarmtv peer' processes behind them. Once every peer plays and
the peers form one overlay ring, the internet is cut between the first
two sites (with the origin and the tracker) and the last two for --cut,
then healed. It prints, per peer, the slices played and due over the cut,
when the two sides each formed their own ring, and after the heal when
the peers formed one ring again and the cut-off side played again.
Everything is torn down at the end, also on failure.

Needs root, iproute2, nftables and nsenter (util-linux).`, stderr)
	reportFile := fs.String("report", "", "write the swarmtv.report/v1 JSON (with per-peer figures) to `FILE`")
	cut := fs.Duration("cut", 30*time.Second, "how long the internet stays cut")
	hosts := fs.Int("hosts", 2, "peers behind each of the four NAT routers (1..10)")
	logDir := fs.String("log-dir", "", "write every process's log to this `folder` at the end")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the swarmtv binary: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rep, err := loadtest.RunPartition(ctx, loadtest.PartitionConfig{Binary: bin, Cut: *cut, HostsPerSite: *hosts, Progress: stderr, LogDir: *logDir})
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, rep.Table())
	if *reportFile != "" {
		if err := report.WriteJSON(*reportFile, rep); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	if rep.MergeMS == 0 || rep.ResumedMS == 0 {
		return errors.New("the peers did not form one ring again, or the cut-off side did not play again")
	}
	return nil
}

// Command swarmtv is the one binary of swarmtv, peer-to-peer live video
// streaming: `swarmtv origin` ingests a broadcaster's stream, `swarmtv
// tracker` places viewers, `swarmtv peer` is a viewer's local proxy for an
// unmodified media player, and `swarmtv demo` runs all of them on this
// machine. This package parses flags and wires the packages together;
// everything else lives in the packages it imports.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"demo", "origin (bundled clip) + tracker + N peers on this machine; prints the URLs to open", runDemo},
	{"origin", "ingest a live stream, cut it into signed chunks and seed the swarm", runOrigin},
	{"tracker", "channel registry, peer placement, heartbeats", runTracker},
	{"peer", "a viewer's local proxy: joins a channel and serves it over RTSP to a player", runPeer},
	{"sim", "deterministic simulation of thousands of peers running the real protocol code", runSim},
	{"loadtest", "real processes in an emulated network of hosts behind real NATs (natmatrix)", runLoadtest},
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `swarmtv — peer-to-peer live video streaming

Usage:
  swarmtv <command> [flags]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Run 'swarmtv <command> --help' for a command's flags. Every flag can also be
set in the environment as SWARMTV_<FLAG> (e.g. SWARMTV_TRACKER for
--tracker); a flag on the command line wins over the environment.

Start here:
  swarmtv demo            # origin + tracker + 3 peers; open the printed rtsp:// URLs
`)
}

// errUsage marks errors whose message is the whole story (help was
// printed or the flags were wrong).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(stderr, "swarmtv %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "swarmtv: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// newFlags returns a flag set whose --help prints the command's
// description and flags.
func newFlags(name, synopsis, description string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: swarmtv %s\n\n%s\n\nFlags (also SWARMTV_<FLAG> in the environment):\n", synopsis, strings.TrimSpace(description))
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, after filling unset flags from SWARMTV_*
// environment variables. Help goes to stdout and returns flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "swarmtv %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return errUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	for _, name := range names {
		if set[name] {
			continue
		}
		env := "SWARMTV_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(name, v); err != nil {
				return fmt.Errorf("%s=%q: %v", env, v, err)
			}
		}
	}
	return nil
}

// newLogger returns a text logger on w at the given level name.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// serveBackground serves h on addr (named by flag in errors) until the
// returned stop is called; it returns the bound address.
func serveBackground(flag, addr string, h http.Handler) (bound string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("--%s %s: %w", flag, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return ln.Addr().String(), func() { srv.Close() }, nil
}

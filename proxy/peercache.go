package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/tracker"
)

// The peer cache: ring members seen before, kept in a small file in the
// peer's state folder (PeerConfig.StateDir), so that a viewer started
// while neither the tracker nor its --bootstrap peer answers rejoins the
// swarm through one of them (issue #6: join through the tracker,
// --bootstrap, or a cache of peers seen before). The ring loop rewrites
// the file when its ring members change; the file holds at most
// maxCached members, nearest in ring order first.

// maxCached bounds the members a peer cache file holds; tryCached the
// ones a start tries (each costs a dial timeout when it is gone).
const (
	maxCached = 16
	tryCached = 4
)

// cacheFile is the peer cache file's format.
type cacheFile struct {
	Channel string             `json:"channel"`
	Peers   []tracker.NodeInfo `json:"peers"`
}

// cachePath is the channel's cache file in dir ("" when dir is empty).
func cachePath(dir, channel string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "peers-"+channel+".json")
}

// loadPeerCache reads the members cached for channel in dir; a missing
// file is an empty cache. Entries that are not a valid node ID and
// host:port are dropped.
func loadPeerCache(dir, channel string) ([]tracker.NodeInfo, error) {
	path := cachePath(dir, channel)
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("peer cache: %w", err)
	}
	var f cacheFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("peer cache %s: %w", path, err)
	}
	if f.Channel != channel {
		return nil, fmt.Errorf("peer cache %s is for channel %q, not %q", path, f.Channel, channel)
	}
	var out []tracker.NodeInfo
	for _, n := range f.Peers {
		if _, _, err := net.SplitHostPort(n.Addr); err == nil && tracker.ValidNodeID(n.ID) && len(out) < maxCached {
			out = append(out, n)
		}
	}
	return out, nil
}

// savePeerCache writes peers (up to maxCached) as channel's cache in dir,
// atomically (a temporary file renamed over the old one).
func savePeerCache(dir, channel string, peers []tracker.NodeInfo) error {
	path := cachePath(dir, channel)
	if path == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("peer cache: %w", err)
	}
	b, err := json.MarshalIndent(cacheFile{Channel: channel, Peers: peers[:min(len(peers), maxCached)]}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".peers-*")
	if err != nil {
		return fmt.Errorf("peer cache: %w", err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("peer cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("peer cache: %w", err)
	}
	return nil
}

// joinCached joins through the cached members in order, as through a
// --bootstrap peer, when neither the tracker nor --bootstrap answered;
// the member that answered becomes the bootstrap peer (the ring loop
// joins the overlay through it).
func (p *Peer) joinCached(ctx context.Context, trackerErr error) (tracker.JoinResponse, error) {
	cached, err := loadPeerCache(p.cfg.StateDir, p.cfg.Channel)
	if err != nil {
		p.log.Warn("the peer cache is unreadable", "err", err)
	}
	var errs []string
	for _, n := range cached[:min(len(cached), tryCached)] {
		if n.ID == string(p.ID()) || n.Addr == p.cfg.Bootstrap {
			continue
		}
		jr, err := p.joinThrough(ctx, n.Addr, swarm.NodeID(n.ID))
		if err == nil {
			p.log.Info("joined through a cached peer", "peer", n.ID, "addr", n.Addr)
			p.cfg.Bootstrap = n.Addr
			return jr, nil
		}
		if ctx.Err() != nil {
			return jr, ctx.Err()
		}
		errs = append(errs, fmt.Sprintf("%s: %v", n.Addr, err))
	}
	if len(cached) == 0 {
		errs = append(errs, "no peers cached")
	}
	return tracker.JoinResponse{}, fmt.Errorf("%w: tracker: %v; cached peers: %s", ErrBootstrap, trackerErr, strings.Join(errs, "; "))
}

// saveRing writes the ring members in cands to the peer cache when they
// changed since the last write (last).
func (p *Peer) saveRing(cands, last []tracker.NodeInfo) []tracker.NodeInfo {
	if p.cfg.StateDir == "" || len(cands) == 0 || slices.Equal(cands, last) {
		return last
	}
	if err := savePeerCache(p.cfg.StateDir, p.cfg.Channel, cands); err != nil {
		p.log.Warn("saving the peer cache", "err", err)
		return last
	}
	return slices.Clone(cands)
}

package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"

	"github.com/quic-go/quic-go"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// ErrNoInfo: the member asked for the channel's description has none to
// give (it serves another channel, or has not joined yet).
var ErrNoInfo = errors.New("transport: the bootstrap peer gave no channel description")

// serveInfo answers an OverlayInfo request with the channel's description.
func (o *Overlay) serveInfo(c *Conn, s *quic.Stream, first wire.Frame) {
	defer s.CancelRead(quic.StreamErrorCode(CodeNormal))
	ch, err := wire.ParseInfoRequest(first.Payload)
	if err != nil {
		o.protocolError(c, err)
		return
	}
	var info []byte
	if ch == o.cfg.Channel && o.cfg.Info != nil {
		info = o.cfg.Info()
	}
	if info == nil {
		s.CancelWrite(quic.StreamErrorCode(CodeWrongChannel))
		return
	}
	b, err := wire.AppendInfo(nil, info)
	if err != nil {
		o.log.Warn("channel info not encodable", "err", err)
		s.CancelWrite(quic.StreamErrorCode(CodeProtocol))
		return
	}
	if err := wire.WriteFrame(s, wire.FrameOverlayInfo, b); err == nil {
		s.Close()
	}
}

// FetchChannelInfo asks the node at hostport (its key not known
// beforehand) for channel's description, as a viewer started with
// --bootstrap does when the tracker is unreachable. It returns the
// node's ID and the description; the connection is closed.
func FetchChannelInfo(ctx context.Context, ep *Endpoint, hostport, channel string) (swarm.NodeID, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, overlayDialTimeout)
	defer cancel()
	c, err := ep.DialAny(ctx, hostport)
	if err != nil {
		return "", nil, err
	}
	defer c.CloseWithError(CodeNormal, "")
	st, err := c.OpenStreamSync(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("transport: asking %s for the channel: %w", hostport, err)
	}
	defer cancelOnDone(ctx, st)()
	if err := wire.WriteFrame(st, wire.FrameOverlayInfo, wire.AppendInfoRequest(nil, channel)); err != nil {
		return "", nil, fmt.Errorf("transport: asking %s for the channel: %w", hostport, err)
	}
	st.Close()
	f, err := wire.ReadFrame(bufio.NewReader(st), wire.MaxOverlayInfoLen+16)
	if err != nil {
		var se *quic.StreamError
		if errors.As(err, &se) && se.ErrorCode == quic.StreamErrorCode(CodeWrongChannel) {
			return "", nil, fmt.Errorf("%w: %s does not serve channel %q", ErrNoInfo, hostport, channel)
		}
		return "", nil, fmt.Errorf("transport: channel info from %s: %w", hostport, err)
	}
	if f.Type != wire.FrameOverlayInfo {
		return "", nil, fmt.Errorf("%w: %s answered with a %v frame", wire.ErrMalformed, hostport, f.Type)
	}
	info, err := wire.ParseInfo(f.Payload)
	if err != nil {
		return "", nil, err
	}
	return c.Remote(), info, nil
}

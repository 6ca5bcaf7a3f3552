package tracker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// NAT returns where the tracker's STUN service listens and whether it
// relays. An error matching ErrNoRendezvous means the tracker has no
// rendezvous routes.
func (c *Client) NAT(ctx context.Context) (NATInfo, error) {
	var in NATInfo
	err := c.do(ctx, http.MethodGet, "/v1/nat", nil, &in)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return in, fmt.Errorf("%w: %v", ErrNoRendezvous, err)
	}
	return in, err
}

// ErrNoRendezvous: the tracker serves no /v1/nat (an older tracker).
var ErrNoRendezvous = errNoRendezvous

// Connect asks how to reach req.Target before dialing it.
func (c *Client) Connect(ctx context.Context, channel string, req ConnectRequest) (ConnectResponse, error) {
	var resp ConnectResponse
	err := c.do(ctx, http.MethodPost, channelPath(channel, "connect"), req, &resp)
	return resp, err
}

// ConnectResult reports how a dial ended.
func (c *Client) ConnectResult(ctx context.Context, channel string, req ConnectResult) error {
	return c.do(ctx, http.MethodPost, channelPath(channel, "connect-result"), req, nil)
}

// Offers waits up to wait for connection offers towards peer id.
func (c *Client) Offers(ctx context.Context, channel, id string, wait time.Duration) ([]Offer, error) {
	var o Offers
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("%s?id=%s&wait_ms=%d", channelPath(channel, "offers"), id, wait.Milliseconds()), nil, &o)
	return o.Offers, err
}

// NATConnections lists the dials peers reported through the rendezvous.
func (c *Client) NATConnections(ctx context.Context) (Connections, error) {
	var cs Connections
	err := c.do(ctx, http.MethodGet, "/v1/nat/connections", nil, &cs)
	return cs, err
}

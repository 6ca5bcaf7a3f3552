package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxResponseBytes bounds a response body read by [Client] (a large
// channel's tree view is the biggest).
const maxResponseBytes = 64 << 20

// Client talks to a tracker's HTTP API. Its zero value is not usable: set
// BaseURL. A Client is safe for concurrent use.
type Client struct {
	// BaseURL is the tracker's root URL, e.g. "http://127.0.0.1:7000".
	BaseURL string
	// HTTP sends the requests. Nil means http.DefaultClient.
	HTTP *http.Client
}

// Register registers a channel, or replaces its origin after a restart.
func (c *Client) Register(ctx context.Context, req RegisterRequest) error {
	return c.do(ctx, http.MethodPost, "/v1/channels", req, nil)
}

// OriginHeartbeat keeps a channel alive. An error matching
// [ErrUnknownChannel] means the tracker forgot the channel (it restarted
// or dropped it): register again.
func (c *Client) OriginHeartbeat(ctx context.Context, channel string, req OriginHeartbeatRequest) (OriginHeartbeatResponse, error) {
	var resp OriginHeartbeatResponse
	err := c.do(ctx, http.MethodPost, channelPath(channel, "origin-heartbeat"), req, &resp)
	return resp, err
}

// Channels lists the registered channels.
func (c *Client) Channels(ctx context.Context) ([]ChannelSummary, error) {
	var list ChannelList
	err := c.do(ctx, http.MethodGet, "/v1/channels", nil, &list)
	return list.Channels, err
}

// Channel returns a channel's description.
func (c *Client) Channel(ctx context.Context, name string) (ChannelInfo, error) {
	var info ChannelInfo
	err := c.do(ctx, http.MethodGet, channelPath(name, ""), nil, &info)
	return info, err
}

// Join joins a channel's tree.
func (c *Client) Join(ctx context.Context, channel string, req JoinRequest) (JoinResponse, error) {
	var resp JoinResponse
	err := c.do(ctx, http.MethodPost, channelPath(channel, "join"), req, &resp)
	return resp, err
}

// Heartbeat sends a heartbeat. An error matching [ErrUnknownPeer] means
// the tracker removed the peer: join again.
func (c *Client) Heartbeat(ctx context.Context, channel string, req HeartbeatRequest) (HeartbeatResponse, error) {
	var resp HeartbeatResponse
	err := c.do(ctx, http.MethodPost, channelPath(channel, "heartbeat"), req, &resp)
	return resp, err
}

// Leave removes the peer id from a channel.
func (c *Client) Leave(ctx context.Context, channel, id string) error {
	return c.do(ctx, http.MethodPost, channelPath(channel, "leave"), LeaveRequest{ID: id}, nil)
}

// ParentLost reports a lost parent and returns the new one.
func (c *Client) ParentLost(ctx context.Context, channel string, req ParentLostRequest) (ParentLostResponse, error) {
	var resp ParentLostResponse
	err := c.do(ctx, http.MethodPost, channelPath(channel, "parent-lost"), req, &resp)
	return resp, err
}

// Tree returns a snapshot of a channel's tree.
func (c *Client) Tree(ctx context.Context, channel string) (TreeView, error) {
	var view TreeView
	err := c.do(ctx, http.MethodGet, channelPath(channel, "tree"), nil, &view)
	return view, err
}

func channelPath(name, action string) string {
	p := "/v1/channels/" + url.PathEscape(name)
	if action != "" {
		p += "/" + action
	}
	return p
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	if c.BaseURL == "" {
		return errors.New("tracker: client has no BaseURL (e.g. http://127.0.0.1:7000)")
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("tracker: encoding %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, body)
	if err != nil {
		return fmt.Errorf("tracker: %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("tracker: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("tracker: %s %s: reading response: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := &APIError{Status: resp.StatusCode}
		var eb ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
			apiErr.Code, apiErr.Message = eb.Error, eb.Message
		} else {
			apiErr.Code = "http_" + fmt.Sprint(resp.StatusCode)
			apiErr.Message = truncate(strings.TrimSpace(string(data)))
		}
		return apiErr
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("tracker: %s %s: malformed response: %w", method, path, err)
	}
	return nil
}

package transport

import (
	"bufio"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/wire"
)

// newEndpoint listens on 127.0.0.1:0 with a fresh identity and closes the
// endpoint when the test ends.
func newEndpoint(t testing.TB) *Endpoint {
	t.Helper()
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	e, err := Listen("127.0.0.1:0", id, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// dialPair dials b from a and returns both ends: a's and the one b
// accepted.
func dialPair(ctx context.Context, t *testing.T, a, b *Endpoint) (dialed, accepted *Conn) {
	t.Helper()
	acc := make(chan *Conn, 1)
	go func() {
		c, err := b.Accept(ctx)
		if err != nil {
			t.Error(err)
		}
		acc <- c
	}()
	c, err := a.Dial(ctx, b.Addr().String(), b.ID())
	if err != nil {
		t.Fatal(err)
	}
	sc := <-acc
	if sc == nil {
		t.FailNow()
	}
	return c, sc
}

func TestDialAccept(t *testing.T) {
	a, b := newEndpoint(t), newEndpoint(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	c, sc := dialPair(ctx, t, a, b)
	if c.Remote() != b.ID() {
		t.Fatalf("dialer sees %s, want %s", c.Remote(), b.ID())
	}
	if p := c.ConnectionState().TLS.NegotiatedProtocol; p != ALPN {
		t.Fatalf("ALPN %q, want %q", p, ALPN)
	}
	if sc.Remote() != a.ID() {
		t.Fatalf("acceptor sees %s, want %s", sc.Remote(), a.ID())
	}

	// A frame crosses.
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.WriteFrame(s, wire.FrameHello, wire.Hello{Channel: "x"}.Append(nil)); err != nil {
		t.Fatal(err)
	}
	ss, err := sc.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f, err := wire.ReadFrame(bufio.NewReader(ss), 0)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := wire.ParseHello(f.Payload); err != nil || h.Channel != "x" {
		t.Fatalf("hello %+v, %v", h, err)
	}
	c.CloseWithError(CodeNormal, "")
}

func TestDialWrongFingerprint(t *testing.T) {
	a, b := newEndpoint(t), newEndpoint(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := a.Dial(ctx, b.Addr().String(), "00112233445566778899aabbccddeeff")
	if !errors.Is(err, ErrFingerprint) {
		t.Fatalf("Dial with the wrong fingerprint: %v, want ErrFingerprint", err)
	}
	// The right one still works afterwards.
	c, err := a.Dial(ctx, b.Addr().String(), b.ID())
	if err != nil {
		t.Fatal(err)
	}
	c.CloseWithError(CodeNormal, "")
}

func TestNonQUICPackets(t *testing.T) {
	e := newEndpoint(t)
	got := make(chan string, 1)
	e.HandleNonQUIC(func(b []byte, from net.Addr) { got <- string(b) })

	u, err := net.DialUDP("udp", nil, e.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	// First two bits zero: not QUIC (a STUN message starts like this).
	msg := "\x00\x01stun-like"
	deadline := time.After(3 * time.Second)
	for {
		if _, err := u.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-got:
			if s != msg {
				t.Fatalf("handler got %q, want %q", s, msg)
			}
			// And the endpoint can answer from the same socket.
			if _, err := e.WriteTo([]byte("\x01\x01reply"), u.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			u.SetReadDeadline(time.Now().Add(3 * time.Second))
			n, err := u.Read(buf)
			if err != nil || string(buf[:n]) != "\x01\x01reply" {
				t.Fatalf("reply %q, %v", buf[:n], err)
			}
			return
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatal("non-QUIC packet never reached the handler")
		}
	}
}

package wire

import (
	"bufio"
	"bytes"
	"testing"
	"time"
)

func FuzzParseChunk(f *testing.F) {
	raw, _ := sampleChunk().Sign(nil, testKey(f))
	f.Add(raw)
	empty, _ := (&Chunk{Channel: "c", Stripes: 1}).Sign(nil, testKey(f))
	f.Add(empty)
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseChunk(b)
		if err != nil {
			return
		}
		if id, err := PeekID(b); err != nil || id != c.ID() {
			t.Fatalf("PeekID %v %v, chunk %v", id, err, c.ID())
		}
		// Whatever parses re-encodes to the same bytes.
		again, err := c.Append(nil)
		if err != nil {
			t.Fatalf("parsed chunk does not re-encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatal("re-encoding changed the bytes")
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(nil, FrameHello, Hello{Channel: "demo", Stripes: 1}.Append(nil)))
	f.Add(AppendFrame(nil, FrameRequest, ID{Seq: 1}.Append(nil)))
	f.Add(AppendFrame(nil, FrameRequest, Request{ID: ID{Seq: 2, Stripe: 3}, Due: 420 * time.Millisecond}.Append(nil)))
	f.Add(AppendFrame(nil, FrameCancel, ID{Seq: 2, Stripe: 3}.Append(nil)))
	f.Add([]byte{2, 0x80, 0x80, 0x01})
	f.Add(AppendFrame(nil, FramePartner, Partner{Channel: "demo"}.Append(nil)))
	if mb, err := (BufferMap{First: 9, Stripes: 4, Held: []uint16{15, 7}}).Append(nil); err == nil {
		f.Add(AppendFrame(nil, FrameBufferMap, mb))
	}
	if ab, err := (Alive{Newest: []uint64{9, 8, 9, 9}}).Append(nil); err == nil {
		f.Add(AppendFrame(nil, FrameAlive, ab))
	}
	f.Add(AppendFrame(nil, FrameMapRequest, MapRequest{}.Append(nil)))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		for i := 0; i < 16; i++ {
			fr, err := ReadFrame(r, 1<<16)
			if err != nil {
				return
			}
			switch fr.Type {
			case FrameHello:
				ParseHello(fr.Payload)
			case FrameRequest:
				ParseRequest(fr.Payload)
			case FrameMissing, FrameCancel:
				ParseID(fr.Payload)
			case FrameBye:
				ParseBye(fr.Payload)
			case FrameChunk:
				ParseChunk(fr.Payload)
			case FramePartner:
				ParsePartner(fr.Payload)
			case FrameBufferMap:
				ParseBufferMap(fr.Payload)
			case FrameAlive:
				ParseAlive(fr.Payload)
			case FrameMapRequest:
				ParseMapRequest(fr.Payload)
			}
		}
	})
}

func FuzzParseHello(f *testing.F) {
	f.Add(Hello{Channel: "demo", Stripes: 15, From: 3}.Append(nil))
	f.Add(Hello{Channel: "demo", Stripes: 15, Start: 1_700_000_000_000_000_000}.Append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHello(b)
		if err != nil {
			return
		}
		if !bytes.Equal(h.Append(nil), b) {
			t.Fatal("hello re-encoding differs")
		}
	})
}

func FuzzParseRequest(f *testing.F) {
	f.Add(ID{Seq: 7, Stripe: 1}.Append(nil))
	f.Add(Request{ID: ID{Seq: 7, Stripe: 1}, Due: 250 * time.Millisecond}.Append(nil))
	f.Add(Request{ID: ID{Seq: 1 << 40, Stripe: 0}, Due: MaxRequestDue}.Append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			return
		}
		if r.Due < 0 || r.Due > MaxRequestDue || r.Due%time.Millisecond != 0 {
			t.Fatalf("due %v", r.Due)
		}
		if !bytes.Equal(r.Append(nil), b) {
			t.Fatal("request re-encoding differs")
		}
	})
}

func FuzzParseBye(f *testing.F) {
	f.Add(Bye{Code: ByeSlow, Reason: "slow"}.Append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseBye(b)
	})
}

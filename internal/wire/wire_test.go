package wire

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func testKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	return ed25519.NewKeyFromSeed(seed)
}

func sampleChunk() *Chunk {
	return &Chunk{
		Channel:  "demo",
		Seq:      42,
		Stripe:   1,
		Stripes:  4,
		Capture:  1_700_000_000_123_456_789,
		Duration: 100_000,
		Keyframe: true,
		Params:   []Param{{Media: 0, Data: []byte{0x67, 1, 2}}, {Media: 0, Data: []byte{0x68, 3}}},
		Packets: []Packet{
			{Media: 0, Offset: 0, RTP: []byte{0x80, 96, 0, 1, 1, 2, 3, 4}},
			{Media: 1, Offset: 33_000, RTP: []byte{0x80, 97, 0, 2}},
		},
	}
}

func TestChunkRoundTrip(t *testing.T) {
	key := testKey(t)
	c := sampleChunk()
	raw, err := c.Sign(nil, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyChunk(raw, key.Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("verify: %v", err)
	}
	got, err := ParseChunk(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, c)
	}
	again, err := got.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, raw) {
		t.Fatal("re-encoding a parsed chunk changed its bytes")
	}
}

func TestChunkEmptyLists(t *testing.T) {
	key := testKey(t)
	c := &Chunk{Channel: "c", Seq: 1, Stripes: 1}
	raw, err := c.Sign(nil, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseChunk(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != 1 || len(got.Packets) != 0 || len(got.Params) != 0 || got.Keyframe {
		t.Fatalf("got %+v", got)
	}
}

func TestVerifyRejectsTampering(t *testing.T) {
	key := testKey(t)
	pub := key.Public().(ed25519.PublicKey)
	raw, err := sampleChunk().Sign(nil, key)
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x01
		if err := VerifyChunk(bad, pub); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("flipping byte %d: err = %v, want ErrBadSignature", i, err)
		}
	}
	other := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	if err := VerifyChunk(raw, other); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("other key: %v", err)
	}
	if err := VerifyChunk(raw[:10], pub); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short: %v", err)
	}
}

func TestParseChunkErrors(t *testing.T) {
	key := testKey(t)
	raw, err := sampleChunk().Sign(nil, key)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(raw); n++ {
		if _, err := ParseChunk(raw[:n]); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
			t.Fatalf("truncated to %d: err = %v", n, err)
		}
	}
	if _, err := ParseChunk(append(bytes.Clone(raw), 0)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing byte: %v", err)
	}
	v2 := bytes.Clone(raw)
	v2[0] = 2
	if _, err := ParseChunk(v2); !errors.Is(err, ErrVersion) {
		t.Fatalf("version 2: %v", err)
	}
}

func TestSignValidates(t *testing.T) {
	key := testKey(t)
	for name, c := range map[string]*Chunk{
		"no channel":   {Stripes: 1},
		"no stripes":   {Channel: "c"},
		"stripe >= K":  {Channel: "c", Stripe: 2, Stripes: 2},
		"too many K":   {Channel: "c", Stripes: MaxStripes + 1},
		"long channel": {Channel: string(make([]byte, MaxChannelLen+1)), Stripes: 1},
	} {
		if _, err := c.Sign(nil, key); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestDealMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for k := 1; k <= MaxStripes; k++ {
		for _, n := range []int{0, 1, k - 1, k, k + 1, 3*k + 2, 97} {
			pkts := make([]Packet, n)
			for i := range pkts {
				pkts[i] = Packet{Media: uint8(r.IntN(2)), Offset: uint32(i), RTP: []byte{byte(i)}}
			}
			dealt := Deal(pkts, k)
			chunks := make([]*Chunk, k)
			for s := range chunks {
				chunks[s] = &Chunk{Seq: 7, Stripe: uint8(s), Stripes: uint8(k), Packets: dealt[s]}
			}
			got, err := Merge(chunks)
			if err != nil {
				t.Fatalf("k=%d n=%d: %v", k, n, err)
			}
			if len(got) != n || (n > 0 && !reflect.DeepEqual(got, pkts)) {
				t.Fatalf("k=%d n=%d: merge differs", k, n)
			}
			// AppendMerge appends after what dst holds.
			head := []Packet{{Offset: 999}}
			app, err := AppendMerge(head, chunks)
			if err != nil || len(app) != n+1 || app[0].Offset != 999 || (n > 0 && !reflect.DeepEqual(app[1:], pkts)) {
				t.Fatalf("k=%d n=%d: append merge differs (%v)", k, n, err)
			}
		}
	}
	// A short stripe leaves AppendMerge's dst as it was.
	if got, err := AppendMerge(make([]Packet, 2, 8), []*Chunk{{Stripe: 0, Packets: Deal([]Packet{{}, {}, {}}, 2)[0]}, {Stripe: 1}}); err == nil || len(got) != 2 {
		t.Fatalf("append merge with a short stripe: %d packets, error %v", len(got), err)
	}
	// A stripe missing its share is an error, not a panic.
	dealt := Deal([]Packet{{}, {}, {}}, 2)
	if _, err := Merge([]*Chunk{{Stripe: 0, Packets: dealt[0]}, {Stripe: 1}}); err == nil {
		t.Fatal("merge with a short stripe succeeded")
	}
	if _, err := Merge([]*Chunk{{Stripe: 1}}); err == nil {
		t.Fatal("merge with a misplaced stripe succeeded")
	}
}

// TestCheckMerge compares CheckMerge with a walk that merges packet by
// packet and fails where a stripe runs short, over random packet counts
// per stripe: they accept the same chunks.
func TestCheckMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	walk := func(chunks []*Chunk) bool {
		total := 0
		for _, c := range chunks {
			total += len(c.Packets)
		}
		for j, n := 0, 0; n < total; j++ {
			for _, c := range chunks {
				if n == total {
					break
				}
				if j >= len(c.Packets) {
					return false
				}
				n++
			}
		}
		return true
	}
	accepted := 0
	for range 20000 {
		k := 1 + r.IntN(6)
		base := r.IntN(4)
		chunks := make([]*Chunk, k)
		for s := range chunks {
			n := base
			if r.IntN(3) == 0 {
				n = max(0, base+r.IntN(3)-1)
			}
			chunks[s] = &Chunk{Seq: 3, Stripe: uint8(s), Packets: make([]Packet, n)}
		}
		want := walk(chunks)
		if err := CheckMerge(chunks); (err == nil) != want {
			counts := make([]int, k)
			for s, c := range chunks {
				counts[s] = len(c.Packets)
			}
			t.Fatalf("counts %v: CheckMerge says %v, the walk %v", counts, err, want)
		}
		if want {
			accepted++
		}
	}
	if accepted == 0 || accepted == 20000 {
		t.Fatalf("%d of 20000 accepted: the cases do not cover both answers", accepted)
	}
	// A chunk of another slice, a misplaced stripe and a nil chunk fail.
	for name, chunks := range map[string][]*Chunk{
		"other slice": {{Seq: 1, Stripe: 0}, {Seq: 2, Stripe: 1}},
		"misplaced":   {{Stripe: 1}},
		"nil":         {{Stripe: 0}, nil},
	} {
		if err := CheckMerge(chunks); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	h := Hello{Channel: "demo", Stripes: 0b1011, From: 99}
	if err := WriteFrame(&buf, FrameHello, h.Append(nil)); err != nil {
		t.Fatal(err)
	}
	id := ID{Seq: 5, Stripe: 3}
	WriteFrame(&buf, FrameRequest, id.Append(nil))
	WriteFrame(&buf, FrameBye, Bye{Code: ByeBadChunk, Reason: "bad signature"}.Append(nil))
	r := bufio.NewReader(&buf)

	f, err := ReadFrame(r, 0)
	if err != nil || f.Type != FrameHello {
		t.Fatalf("frame 1: %v %v", f.Type, err)
	}
	gh, err := ParseHello(f.Payload)
	if err != nil || gh != h {
		t.Fatalf("hello: %+v %v", gh, err)
	}
	f, _ = ReadFrame(r, 0)
	gid, err := ParseID(f.Payload)
	if err != nil || gid != id || f.Type != FrameRequest {
		t.Fatalf("request: %+v %v", gid, err)
	}
	f, _ = ReadFrame(r, 0)
	y, err := ParseBye(f.Payload)
	if err != nil || y.Code != ByeBadChunk || y.Reason != "bad signature" {
		t.Fatalf("bye: %+v %v", y, err)
	}
	if _, err := ReadFrame(r, 0); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func TestReadFrameErrors(t *testing.T) {
	for name, in := range map[string][]byte{
		"unknown type": {11, 0},
		"bad varint":   {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"truncated":    {2, 10, 1, 2},
		"no length":    {2},
	} {
		if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(in)), 0); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	big := AppendFrame(nil, FrameChunk, make([]byte, 100))
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(big)), 50); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("oversize: %v", err)
	}
	if _, err := ParseHello([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}); err == nil {
		t.Error("hello without channel accepted")
	}
	withStart := Hello{Channel: "c", Start: 1}.Append(nil)
	for name, b := range map[string][]byte{
		"start 0":        append(Hello{Channel: "c"}.Append(nil), 0, 0, 0, 0, 0, 0, 0, 0),
		"start negative": append(Hello{Channel: "c"}.Append(nil), 0x80, 0, 0, 0, 0, 0, 0, 0),
		"start short":    withStart[:len(withStart)-1],
		"after start":    append(withStart, 0),
	} {
		if _, err := ParseHello(b); err == nil {
			t.Errorf("hello, %s: accepted", name)
		}
	}
}

// A hello's Start travels as 8 trailing bytes only when set: one without
// it is byte for byte the older hello.
func TestHelloStart(t *testing.T) {
	old := Hello{Channel: "demo", Stripes: 3, From: 7}
	if b := old.Append(nil); len(b) != 1+1+4+2+8 {
		t.Errorf("hello without start: %d bytes", len(b))
	}
	h := Hello{Channel: "demo", Stripes: 3, Start: 1_700_000_000_123_456_789}
	b := h.Append(nil)
	if len(b) != len(old.Append(nil))+8 {
		t.Errorf("hello with start: %d bytes", len(b))
	}
	got, err := ParseHello(b)
	if err != nil || got != h {
		t.Fatalf("hello with start: %+v %v", got, err)
	}
	if _, err := ParseID([]byte{0, 0, 0, 0, 0, 0, 0, 1, MaxStripes}); err == nil {
		t.Error("request for stripe MaxStripes accepted")
	}
}

// A request's Due travels as 4 trailing bytes of milliseconds only when
// set: one without it is byte for byte the bare ID older builds send and
// read, and an older request reads as one without a deadline.
func TestRequestDue(t *testing.T) {
	id := ID{Seq: 1234, Stripe: 3}
	if b := (Request{ID: id}).Append(nil); !bytes.Equal(b, id.Append(nil)) {
		t.Errorf("request without due: % x, want the bare id", b)
	}
	got, err := ParseRequest(id.Append(nil))
	if err != nil || got != (Request{ID: id}) {
		t.Errorf("bare id: %+v %v", got, err)
	}
	for _, c := range []struct{ due, want time.Duration }{
		{250 * time.Millisecond, 250 * time.Millisecond},
		{1, time.Millisecond}, // rounded up: never sent as "none"
		{1500*time.Microsecond + 1, 2 * time.Millisecond},
		{2 * MaxRequestDue, MaxRequestDue},
	} {
		b := Request{ID: id, Due: c.due}.Append(nil)
		if len(b) != 13 {
			t.Errorf("due %v: %d bytes", c.due, len(b))
		}
		got, err := ParseRequest(b)
		if err != nil || got != (Request{ID: id, Due: c.want}) {
			t.Errorf("due %v: %+v %v, want due %v", c.due, got, err, c.want)
		}
	}
	withDue := Request{ID: id, Due: time.Second}.Append(nil)
	for name, b := range map[string][]byte{
		"due 0":       append(id.Append(nil), 0, 0, 0, 0),
		"due too far": append(id.Append(nil), 0xff, 0xff, 0xff, 0xff),
		"due short":   withDue[:len(withDue)-1],
		"after due":   append(withDue, 0),
		"bad stripe":  append([]byte{0, 0, 0, 0, 0, 0, 0, 1, MaxStripes}, 0, 0, 0, 1),
	} {
		if _, err := ParseRequest(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("request, %s: %v, want ErrMalformed", name, err)
		}
	}
	// A Cancel frame carries the bare ID.
	fr, err := ReadFrame(bufio.NewReader(bytes.NewReader(AppendFrame(nil, FrameCancel, id.Append(nil)))), 0)
	if err != nil || fr.Type != FrameCancel || fr.Type.String() != "cancel" {
		t.Fatalf("cancel frame: %+v %v", fr, err)
	}
	if got, err := ParseID(fr.Payload); err != nil || got != id {
		t.Fatalf("cancel id %v %v", got, err)
	}
	// An older build reads the bare ID only: a request with a due is
	// malformed to it.
	if _, err := ParseID(withDue); err == nil {
		t.Error("ParseID accepted a request with a due")
	}
}

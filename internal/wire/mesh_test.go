package wire

import (
	"bufio"
	"bytes"
	"errors"
	"slices"
	"testing"
)

func TestBufferMapRoundTrip(t *testing.T) {
	for _, m := range []BufferMap{
		{First: 1, Stripes: 4, Held: []uint16{0xf, 0x5, 0x0, 0x8}},
		{First: 1 << 40, Stripes: 3, Held: []uint16{0x7}},
		{First: 7, Stripes: 1},
		{First: 9, Stripes: 16, Held: make([]uint16, MaxMapSlices)},
	} {
		b, err := m.Append(nil)
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		got, err := ParseBufferMap(b)
		if err != nil {
			t.Fatalf("%+v: parse: %v", m, err)
		}
		if got.First != m.First || got.Stripes != m.Stripes || !slices.Equal(got.Held, m.Held) && len(m.Held) > 0 {
			t.Fatalf("round trip: got %+v, want %+v", got, m)
		}
	}
	// 4 stripes × 32 slices: 22 bytes, as the doc says.
	b, _ := BufferMap{First: 1000, Stripes: 4, Held: make([]uint16, 32)}.Append(nil)
	if len(b) != 1+2+1+1+16 {
		t.Fatalf("4×32 map: %d bytes", len(b))
	}
	m := BufferMap{First: 10, Stripes: 4, Held: []uint16{0x1, 0x8}}
	if !m.Has(10, 0) || m.Has(10, 1) || !m.Has(11, 3) || m.Has(12, 0) || m.Has(9, 0) || m.Has(11, 4) {
		t.Fatal("Has answers wrong")
	}
	if last, ok := m.Last(); !ok || last != 11 {
		t.Fatalf("Last = %d, %v", last, ok)
	}
}

func TestBufferMapRejects(t *testing.T) {
	good, _ := BufferMap{First: 5, Stripes: 3, Held: []uint16{1, 2, 4}}.Append(nil)
	for name, b := range map[string][]byte{
		"empty":     nil,
		"version":   append([]byte{2}, good[1:]...),
		"stripes 0": {1, 5, 0, 0},
		"stripes":   {1, 5, 17, 0},
		"too many":  {1, 5, 1, MaxMapSlices + 1},
		"truncated": good[:len(good)-1],
		"trailing":  append(slices.Clone(good), 0),
		"padding":   {1, 5, 3, 1, 0x08},
		"overflow":  {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1, 2, 0},
		"varint":    {1, 0x85, 0x00, 1, 0},
	} {
		if _, err := ParseBufferMap(b); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
			t.Errorf("%s: err = %v, want malformed", name, err)
		}
	}
	if _, err := (BufferMap{Stripes: 0}).Append(nil); err == nil {
		t.Error("a map without stripes encodes")
	}
	if _, err := (BufferMap{Stripes: 1, Held: make([]uint16, MaxMapSlices+1)}).Append(nil); err == nil {
		t.Error("a map over MaxMapSlices encodes")
	}
}

func TestAliveAndPartner(t *testing.T) {
	a := Alive{Newest: []uint64{0, 1, 300, 1 << 50}}
	b, err := a.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseAlive(b)
	if err != nil || !slices.Equal(got.Newest, a.Newest) {
		t.Fatalf("alive round trip: %+v, %v", got, err)
	}
	for name, b := range map[string][]byte{
		"empty": nil, "zero stripes": {1, 0}, "17 stripes": {1, 17}, "short": {1, 2, 5},
		"trailing": {1, 1, 5, 5}, "version": {3, 1, 0},
	} {
		if _, err := ParseAlive(b); err == nil {
			t.Errorf("alive %s parses", name)
		}
	}
	if _, err := (Alive{}).Append(nil); err == nil {
		t.Error("an alive without stripes encodes")
	}
	p := Partner{Channel: "demo"}
	got2, err := ParsePartner(p.Append(nil))
	if err != nil || got2 != p {
		t.Fatalf("partner round trip: %+v, %v", got2, err)
	}
	for name, b := range map[string][]byte{"empty": nil, "no channel": {1, 0}, "trailing": append(p.Append(nil), 0), "version": {2, 1, 'a'}} {
		if _, err := ParsePartner(b); err == nil {
			t.Errorf("partner %s parses", name)
		}
	}
}

func TestReadFrameMeshTypes(t *testing.T) {
	mb, _ := BufferMap{First: 3, Stripes: 2, Held: []uint16{3}}.Append(nil)
	ab, _ := Alive{Newest: []uint64{4, 5}}.Append(nil)
	var buf []byte
	buf = AppendFrame(buf, FramePartner, Partner{Channel: "c"}.Append(nil))
	buf = AppendFrame(buf, FrameBufferMap, mb)
	buf = AppendFrame(buf, FrameAlive, ab)
	buf = AppendFrame(buf, FrameMapRequest, MapRequest{}.Append(nil))
	r := bufio.NewReader(bytes.NewReader(buf))
	for _, want := range []FrameType{FramePartner, FrameBufferMap, FrameAlive, FrameMapRequest} {
		f, err := ReadFrame(r, 0)
		if err != nil || f.Type != want {
			t.Fatalf("read %v: %v, %v", want, f.Type, err)
		}
	}
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader([]byte{11, 0})), 0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("frame type 11: %v", err)
	}
}

// ParseBufferMapInto decodes as ParseBufferMap does into the array it is
// given: a stale longer map's bits do not survive, and an array too
// small is replaced.
func TestParseBufferMapInto(t *testing.T) {
	held := make([]uint16, 8, 16)
	for i := range held {
		held[i] = 0xffff
	}
	want := BufferMap{First: 5, Stripes: 4, Held: []uint16{0x1, 0x0, 0x8}}
	b, err := want.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseBufferMapInto(b, held[:0])
	if err != nil {
		t.Fatal(err)
	}
	if got.First != want.First || got.Stripes != want.Stripes || !slices.Equal(got.Held, want.Held) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if &got.Held[0] != &held[0] {
		t.Fatal("the given array was not reused")
	}
	small := make([]uint16, 0, 2)
	if got, err = ParseBufferMapInto(b, small); err != nil || !slices.Equal(got.Held, want.Held) || cap(got.Held) == cap(small) {
		t.Fatalf("into a small array: %+v, %v", got, err)
	}
}

func FuzzParseBufferMap(f *testing.F) {
	for _, m := range []BufferMap{
		{First: 1, Stripes: 4, Held: []uint16{0xf, 0x5, 0x0, 0x8}},
		{First: 1 << 40, Stripes: 3, Held: []uint16{0x7}},
		{First: 7, Stripes: 1},
	} {
		b, _ := m.Append(nil)
		f.Add(b)
	}
	f.Add([]byte{1, 5, 3, 1, 0x08})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseBufferMap(b)
		if err != nil {
			return
		}
		again, err := m.Append(nil)
		if err != nil {
			t.Fatalf("parsed map does not re-encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatal("buffer map re-encoding differs")
		}
		stale := []uint16{0xffff, 0xffff, 0xffff, 0xffff}
		into, err := ParseBufferMapInto(b, stale[:0])
		if err != nil || into.First != m.First || into.Stripes != m.Stripes || !slices.Equal(into.Held, m.Held) {
			t.Fatalf("ParseBufferMapInto gives %+v, %v; ParseBufferMap %+v", into, err, m)
		}
	})
}

func FuzzParseAlive(f *testing.F) {
	for _, a := range []Alive{{Newest: []uint64{0}}, {Newest: []uint64{1, 2, 3, 1 << 60}}} {
		b, _ := a.Append(nil)
		f.Add(b)
	}
	f.Add([]byte{1, 2, 0x80, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAlive(b)
		if err != nil {
			return
		}
		again, err := a.Append(nil)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("alive re-encoding differs: %v", err)
		}
	})
}

func TestMapRequest(t *testing.T) {
	b := MapRequest{}.Append(nil)
	if len(b) != 1 {
		t.Fatalf("map request: %d bytes, want 1", len(b))
	}
	if _, err := ParseMapRequest(b); err != nil {
		t.Fatalf("map request round trip: %v", err)
	}
	for name, b := range map[string][]byte{"empty": nil, "version": {2}, "trailing": {1, 0}} {
		if _, err := ParseMapRequest(b); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
			t.Errorf("map request %s: err = %v, want malformed", name, err)
		}
	}
}

func FuzzParseMapRequest(f *testing.F) {
	f.Add(MapRequest{}.Append(nil))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseMapRequest(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Append(nil), b) {
			t.Fatal("map request re-encoding differs")
		}
	})
}

func FuzzParsePartner(f *testing.F) {
	f.Add(Partner{Channel: "demo"}.Append(nil))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePartner(b)
		if err != nil {
			return
		}
		if !bytes.Equal(p.Append(nil), b) {
			t.Fatal("partner re-encoding differs")
		}
	})
}

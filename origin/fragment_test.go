package origin

import (
	"bytes"
	"testing"

	"github.com/pion/rtp"
)

func nal(typ byte, n int) []byte {
	b := make([]byte, n)
	b[0] = 0x60 | typ // nal_ref_idc 3
	for i := 1; i < n; i++ {
		b[i] = byte(i * 7)
	}
	return b
}

func TestFragmentH264(t *testing.T) {
	idr := nal(5, 3000)
	sps, pps := nal(7, 20), nal(8, 6)
	fuStart := append([]byte{0x7c, 0x85}, idr[1:1400]...) // FU-A, S bit, type 5
	fuMiddle := append([]byte{0x7c, 0x05}, idr[1400:2800]...)
	for _, tt := range []struct {
		name    string
		payload []byte
		marker  bool
		want    [][]byte // NAL units (or, for FU-A input, the payloads' FU data joined)
	}{
		{"single NAL unit", idr, true, [][]byte{idr}},
		{"STAP-A", stap(sps, pps, idr), true, [][]byte{sps, pps, idr}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 65534, Timestamp: 9, Marker: tt.marker}, Payload: tt.payload}
			out := fragmentH264(pkt, MaxRTPPacket)
			if len(out) < 2 {
				t.Fatalf("%d packets", len(out))
			}
			var pls [][]byte
			for i, raw := range out {
				var r rtp.Packet
				if err := r.Unmarshal(raw); err != nil {
					t.Fatal(err)
				}
				if len(raw) > MaxRTPPacket {
					t.Fatalf("packet %d: %d bytes", i, len(raw))
				}
				if r.SequenceNumber != 65534+uint16(i) || r.Timestamp != 9 || r.Marker != (tt.marker && i == len(out)-1) {
					t.Fatalf("packet %d header %+v", i, r.Header)
				}
				pls = append(pls, r.Payload)
			}
			units, err := h264Units(pls)
			if err != nil {
				t.Fatal(err)
			}
			if len(units) != len(tt.want) {
				t.Fatalf("%d units, want %d", len(units), len(tt.want))
			}
			for i := range units {
				if !bytes.Equal(units[i], tt.want[i]) {
					t.Fatalf("unit %d differs", i)
				}
			}
		})
	}

	// FU-A fragments cut smaller keep S on the first and no E (the unit
	// goes on), or neither for a middle fragment.
	for _, tt := range []struct {
		name       string
		payload    []byte
		start, end bool
	}{
		{"FU-A start", fuStart, true, false},
		{"FU-A middle", fuMiddle, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := fragmentH264(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96}, Payload: tt.payload}, MaxRTPPacket)
			if len(out) != 2 {
				t.Fatalf("%d packets, want 2", len(out))
			}
			var data []byte
			for i, raw := range out {
				var r rtp.Packet
				r.Unmarshal(raw)
				s, e := r.Payload[1]&0x80 != 0, r.Payload[1]&0x40 != 0
				if r.Payload[0] != tt.payload[0] || r.Payload[1]&0x1f != 5 || s != (tt.start && i == 0) || e != (tt.end && i == 1) {
					t.Fatalf("fragment %d: FU %#x %#x", i, r.Payload[0], r.Payload[1])
				}
				data = append(data, r.Payload[2:]...)
			}
			if !bytes.Equal(data, tt.payload[2:]) {
				t.Fatal("fragment data differs")
			}
		})
	}

	// Left alone: packets that fit, other packetizations, garbage.
	for name, pl := range map[string][]byte{
		"fits":        nal(1, 1000),
		"STAP-B":      append([]byte{0x79}, make([]byte, 1500)...),
		"bad STAP-A":  append([]byte{0x78, 0xff, 0xff}, make([]byte, 1500)...),
		"empty FU-A":  {0x7c, 0x85},
		"empty":       {},
		"NAL type 0":  append([]byte{0x60}, make([]byte, 1500)...),
		"type 31 (?)": append([]byte{0x7f}, make([]byte, 1500)...),
	} {
		if out := fragmentH264(&rtp.Packet{Header: rtp.Header{Version: 2}, Payload: pl}, MaxRTPPacket); out != nil {
			t.Errorf("%s: split into %d packets", name, len(out))
		}
	}
}

// aacPacket aggregates AUs in an RFC 3640 AAC-hbr payload.
func aacPacket(aus ...[]byte) []byte {
	b := []byte{byte(16 * len(aus) >> 8), byte(16 * len(aus))}
	for _, au := range aus {
		b = append(b, byte(len(au)<<3>>8), byte(len(au)<<3))
	}
	for _, au := range aus {
		b = append(b, au...)
	}
	return b
}

func TestFragmentAAC(t *testing.T) {
	var aus [][]byte
	for i := range 5 {
		aus = append(aus, bytes.Repeat([]byte{byte(i + 1)}, 300))
	}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 97, SequenceNumber: 10, Timestamp: 5000, Marker: true}, Payload: aacPacket(aus...)}
	out := fragmentAAC(pkt, MaxRTPPacket)
	if len(out) != 2 {
		t.Fatalf("%d packets, want 2", len(out))
	}
	next := 0
	for i, raw := range out {
		var r rtp.Packet
		if err := r.Unmarshal(raw); err != nil {
			t.Fatal(err)
		}
		if len(raw) > MaxRTPPacket || r.SequenceNumber != 10+uint16(i) || !r.Marker || r.Timestamp != 5000+uint32(next*aacSamplesPerAU) {
			t.Fatalf("packet %d: %d bytes, header %+v", i, len(raw), r.Header)
		}
		n := (int(r.Payload[0])<<8 | int(r.Payload[1])) / 16
		data := r.Payload[2+2*n:]
		for j := range n {
			size := (int(r.Payload[2+2*j])<<8 | int(r.Payload[3+2*j])) >> 3
			if !bytes.Equal(data[:size], aus[next]) {
				t.Fatalf("packet %d unit %d differs", i, j)
			}
			data = data[size:]
			next++
		}
	}
	if next != len(aus) {
		t.Fatalf("%d units out, %d in", next, len(aus))
	}
	// Left alone: fits, one unit too large, interleaved, sizes that do
	// not add up.
	big := bytes.Repeat([]byte{9}, 1300)
	inter := aacPacket(aus...)
	inter[3] |= 1
	for name, pl := range map[string][]byte{
		"fits":        aacPacket(aus[0], aus[1]),
		"one big AU":  aacPacket(big),
		"big AU pair": aacPacket(aus[0], big),
		"interleaved": inter,
		"short":       aacPacket(aus...)[:1000],
	} {
		if out := fragmentAAC(&rtp.Packet{Header: rtp.Header{Version: 2}, Payload: pl}, MaxRTPPacket); out != nil {
			t.Errorf("%s: split into %d packets", name, len(out))
		}
	}
}

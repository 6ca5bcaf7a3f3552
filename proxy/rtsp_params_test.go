package proxy

import (
	"bytes"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
)

var (
	testSPS    = []byte{0x67, 0x64, 0x00, 0x0c, 0xac}
	testPPS    = []byte{0x68, 0xeb, 0xe3, 0xcb}
	testVPS265 = []byte{0x40, 0x01, 0x0c}
	testSPS265 = []byte{0x42, 0x01, 0x01}
	testPPS265 = []byte{0x44, 0x01, 0xc1}
)

func op(media int, ts uint32, payload ...byte) outPacket {
	return outPacket{media: media, pkt: rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, Timestamp: ts}, Payload: payload}}
}

func stapA(units ...[]byte) []byte {
	out := []byte{0x78}
	for _, u := range units {
		out = append(out, byte(len(u)>>8), byte(len(u)))
		out = append(out, u...)
	}
	return out
}

// units returns the NAL units a payload carries.
func units(t *testing.T, c int, p []byte) [][]byte {
	t.Helper()
	var out [][]byte
	forEachNALU(c, p, func(n []byte) bool { out = append(out, n); return true })
	return out
}

func TestInsertParamsH264(t *testing.T) {
	codecs := map[uint8]int{96: codecH264}
	audio := op(1, 777, 0x21, 0x10)
	fuStart := op(0, 9000, 0x7c, 0x85, 1, 2, 3) // FU-A, start, IDR
	fuEnd := op(0, 9000, 0x7c, 0x45, 4, 5)
	params := []wire.Param{{Media: 0, Data: testSPS}, {Media: 0, Data: testPPS}, {Media: 1, Data: []byte{0x67, 9}}}
	sl := &swarm.Slice{Keyframe: true, Params: params}

	for _, tc := range []struct {
		name  string
		in    []outPacket
		at    int      // where the parameter packet must be; -1: none inserted
		units [][]byte // what it must carry
	}{
		{"fu-a idr", []outPacket{audio, fuStart, fuEnd}, 1, [][]byte{testSPS, testPPS}},
		{"after sei of the same access unit", []outPacket{op(0, 9000, 0x06, 1), audio, fuStart, fuEnd}, 0, [][]byte{testSPS, testPPS}},
		{"after an aud", []outPacket{op(0, 9000, 0x09, 0xf0), op(0, 9000, 0x06, 1), fuStart}, 1, [][]byte{testSPS, testPPS}},
		{"in band already", []outPacket{op(0, 9000, stapA(testSPS, testPPS)...), fuStart, fuEnd}, -1, nil},
		{"pps missing in band", []outPacket{op(0, 9000, testSPS...), fuStart}, 1, [][]byte{testPPS}},
		{"single idr nalu", []outPacket{op(0, 3000, 0x01, 0), op(0, 9000, 0x65, 0x88)}, 1, [][]byte{testSPS, testPPS}},
		{"idr inside stap-a", []outPacket{op(0, 9000, stapA([]byte{0x06, 1}, []byte{0x65, 0x88})...)}, 0, [][]byte{testSPS, testPPS}},
		{"no idr", []outPacket{op(0, 9000, 0x41, 0x9a)}, -1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]outPacket(nil), tc.in...)
			out := insertParams(in, 0, codecs, sl)
			if tc.at < 0 {
				if len(out) != len(tc.in) {
					t.Fatalf("%d packets inserted, want none", len(out)-len(tc.in))
				}
				return
			}
			if len(out) != len(tc.in)+1 {
				t.Fatalf("%d packets, want %d", len(out), len(tc.in)+1)
			}
			p := out[tc.at]
			got := units(t, codecH264, p.pkt.Payload)
			if len(got) != len(tc.units) {
				t.Fatalf("inserted %x, want units %x", p.pkt.Payload, tc.units)
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.units[i]) {
					t.Fatalf("inserted %x, want units %x", p.pkt.Payload, tc.units)
				}
			}
			if len(tc.units) > 1 && p.pkt.Payload[0] != 0x60|h264STAPA {
				t.Errorf("aggregation header %#x, want STAP-A with the highest NRI", p.pkt.Payload[0])
			}
			if p.pkt.Timestamp != 9000 || p.pkt.PayloadType != 96 || p.pkt.Marker || p.media != 0 {
				t.Errorf("inserted header %+v media %d", p.pkt.Header, p.media)
			}
		})
	}
}

func TestInsertParamsH265(t *testing.T) {
	codecs := map[uint8]int{96: codecH265}
	// FU (type 49) start of an IDR_W_RADL (type 19).
	fu := op(0, 5000, 49<<1, 1, 0x80|19, 7, 7)
	sl := &swarm.Slice{Keyframe: true, Params: []wire.Param{
		{Media: 0, Data: testPPS265}, {Media: 0, Data: testSPS265}, {Media: 0, Data: testVPS265},
	}}
	out := insertParams([]outPacket{fu}, 0, codecs, sl)
	if len(out) != 2 {
		t.Fatalf("%d packets, want 2", len(out))
	}
	p := out[0].pkt
	if naluType(codecH265, p.Payload) != h265AP || p.Timestamp != 5000 {
		t.Fatalf("inserted %x ts %d, want an AP at 5000", p.Payload, p.Timestamp)
	}
	got := units(t, codecH265, p.Payload)
	want := [][]byte{testVPS265, testSPS265, testPPS265} // decoding order
	for i := range want {
		if i >= len(got) || !bytes.Equal(got[i], want[i]) {
			t.Fatalf("AP units %x, want %x", got, want)
		}
	}
}

func TestParamPacketsTooBigForOne(t *testing.T) {
	big := append([]byte{0x67}, make([]byte, 1000)...)
	pps := append([]byte{0x68}, make([]byte, 600)...)
	out := paramPackets(codecH264, [][]byte{big, pps})
	if len(out) != 2 || !bytes.Equal(out[0], big) || !bytes.Equal(out[1], pps) {
		t.Fatalf("got %d packets, want the two units as single NAL unit packets", len(out))
	}
}

// FuzzPrepare: any slice content — garbage RTP, unknown medias, odd
// parameter sets — is prepared without a panic and yields only packets of
// known medias and payload types.
func FuzzPrepare(f *testing.F) {
	desc, err := parseSDP([]byte(synthSDP + "m=audio 0 RTP/AVP 97\r\na=rtpmap:97 opus/48000/2\r\n"))
	if err != nil {
		f.Fatal(err)
	}
	st, err := newStreamInfo(desc)
	if err != nil {
		f.Fatal(err)
	}
	seed := func(media uint8, payload []byte) []byte {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96 + media}, Payload: payload}
		b, _ := p.Marshal()
		return b
	}
	f.Add(uint8(0), seed(0, []byte{0x7c, 0x85, 1}), []byte{0x67, 1}, true)
	f.Add(uint8(0), seed(0, stapA([]byte{0x65}, []byte{})), []byte{0x68}, true)
	f.Add(uint8(1), seed(1, []byte{1, 2}), []byte{}, false)
	f.Add(uint8(3), []byte{0x80}, []byte{0x67}, true)
	f.Fuzz(func(t *testing.T, media uint8, raw, param []byte, key bool) {
		sl := swarm.Slice{Capture: time.Unix(1, 0), Keyframe: key,
			Params:  []wire.Param{{Media: media, Data: param}, {Media: 0, Data: param}},
			Packets: []wire.Packet{{Media: media, RTP: raw}, {Media: 0, RTP: raw}}}
		out, _ := st.prepare(&sl)
		for _, p := range out.packets {
			if p.media >= len(st.medias) {
				t.Fatalf("packet of media %d", p.media)
			}
			if _, ok := st.medias[p.media].codecs[p.pkt.PayloadType]; !ok {
				t.Fatalf("packet of payload type %d", p.pkt.PayloadType)
			}
			if p.size > maxPacketSize {
				t.Fatalf("packet of %d bytes", p.size)
			}
		}
		st.hold(out)
	})
}

// FuzzSetDescription: any bytes handed over as an SDP are parsed or
// refused without a panic.
func FuzzSetDescription(f *testing.F) {
	f.Add([]byte(synthSDP))
	f.Add([]byte(synthSDP + "m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/48000/1\r\n" +
		"a=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1188\r\n"))
	f.Add([]byte("v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\na=fmtp:96 sprop-max-don-diff=2\r\n"))
	f.Add([]byte("v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=0\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		desc, err := parseSDP(b)
		if err != nil {
			return
		}
		if st, err := newStreamInfo(desc); err == nil && len(st.medias) != len(desc.Medias) {
			t.Fatalf("%d medias known of %d", len(st.medias), len(desc.Medias))
		}
	})
}

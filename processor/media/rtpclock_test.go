package media

import (
	"testing"

	"github.com/pion/rtp"
)

func TestRTPClockFollowsStreamTime(t *testing.T) {
	pkts := oggPackets(t, onePacketPerPageOgg(t))[:20]
	type in struct {
		seq uint16
		ts  uint32
	}
	tests := []struct {
		name string
		in   []in
		want int // samples delivered
	}{
		{"consecutive packets give 20 ms each", []in{{1, 0}, {2, 960}, {3, 1920}}, 3 * 320},
		{"a lost packet becomes 20 ms of silence", []in{{1, 0}, {3, 1920}}, 3 * 320},
		{"a DTX pause of one second becomes silence", []in{{1, 0}, {2, 960 + 48000}}, 2*320 + 16000},
		{"a duplicate is dropped", []in{{1, 0}, {2, 960}, {2, 960}}, 2 * 320},
		{"a late reordered packet is dropped, its time already filled", []in{{1, 0}, {3, 1920}, {2, 960}}, 3 * 320},
		{"sequence and timestamp wrap around", []in{{65535, 4294966336}, {0, 0}, {1, 960}}, 3 * 320},
		{"a wild timestamp jump inserts at most maxSilence", []in{{1, 0}, {2, 2_000_000_000}}, 2*320 + maxSilence},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec, err := NewOpusDecoder()
			if err != nil {
				t.Fatal(err)
			}
			var c rtpClock
			got := 0
			for i, p := range tt.in {
				c.packet(&rtp.Packet{Header: rtp.Header{SequenceNumber: p.seq, Timestamp: p.ts}, Payload: pkts[i]}, dec,
					func(pcm []int16) { got += len(pcm) })
			}
			if got != tt.want {
				t.Errorf("delivered %d samples, want %d", got, tt.want)
			}
		})
	}
}

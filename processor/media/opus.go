package media

import (
	"errors"
	"fmt"

	"github.com/pion/opus"
)

// maxPacketSamples is the longest Opus packet (120 ms) at 16 kHz.
const maxPacketSamples = SampleRate * 120 / 1000

// OpusDecoder decodes one Opus stream (mono or stereo) to 16 kHz mono PCM. It
// keeps state between packets, so one decoder serves one stream, and it is
// not safe for concurrent use.
type OpusDecoder struct {
	dec opus.Decoder
	buf [maxPacketSamples]int16
}

// NewOpusDecoder returns a decoder whose output is 16 kHz mono.
func NewOpusDecoder() (*OpusDecoder, error) {
	dec, err := opus.NewDecoderWithOutput(SampleRate, 1)
	if err != nil {
		return nil, fmt.Errorf("media: opus decoder: %w", err)
	}
	return &OpusDecoder{dec: dec}, nil
}

// Decode decodes one Opus packet. The returned slice is newly allocated and
// belongs to the caller.
func (d *OpusDecoder) Decode(pkt []byte) ([]int16, error) {
	if len(pkt) == 0 {
		return nil, errors.New("media: empty opus packet")
	}
	n, err := d.decode(pkt)
	if err != nil {
		return nil, err
	}
	out := make([]int16, n)
	copy(out, d.buf[:n])
	return out, nil
}

// decode leaves the samples in d.buf. pion/opus is young: a panic on a hostile
// packet becomes an error rather than taking the processor down.
func (d *OpusDecoder) decode(pkt []byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, fmt.Errorf("media: opus decoder panic: %v", r)
		}
	}()
	n, err = d.dec.DecodeToInt16(pkt, d.buf[:])
	if err != nil {
		return 0, fmt.Errorf("media: decode opus: %w", err)
	}
	return n, nil
}

// opusPacketSamples returns the duration of an Opus packet in 16 kHz samples,
// read from its TOC byte (RFC 6716 §3.1), or an error for a malformed packet.
func opusPacketSamples(pkt []byte) (int, error) {
	if len(pkt) == 0 {
		return 0, errors.New("media: empty opus packet")
	}
	toc := pkt[0]
	config := toc >> 3
	var per48 int // samples per frame at 48 kHz
	switch {
	case config < 12: // SILK: 10, 20, 40, 60 ms
		per48 = [4]int{480, 960, 1920, 2880}[config&3]
	case config < 16: // hybrid: 10, 20 ms
		per48 = [2]int{480, 960}[config&1]
	default: // CELT: 2.5, 5, 10, 20 ms
		per48 = [4]int{120, 240, 480, 960}[config&3]
	}
	frames := 1
	switch toc & 3 {
	case 1, 2:
		frames = 2
	case 3:
		if len(pkt) < 2 {
			return 0, errors.New("media: opus packet: missing frame count")
		}
		frames = int(pkt[1] & 0x3f)
		if frames == 0 {
			return 0, errors.New("media: opus packet: zero frames")
		}
	}
	total := per48 * frames
	if total > 5760 {
		return 0, errors.New("media: opus packet longer than 120 ms")
	}
	return total / 3, nil
}

// opusStream decodes the packets of one container stream into out. An isolated
// corrupt packet becomes silence of its nominal length so the stream clock
// holds; a run of them means the stream is not Opus at all and is an error.
type opusStream struct {
	dec       *OpusDecoder
	out       PCMFunc
	preSkip   int // 16 kHz samples still to drop from the start (OpusHead pre-skip)
	badRun    int
	lastFrame int
}

const maxBadPackets = 25

func newOpusStream(out PCMFunc) (*opusStream, error) {
	dec, err := NewOpusDecoder()
	if err != nil {
		return nil, err
	}
	return &opusStream{dec: dec, out: out, lastFrame: SampleRate / 50}, nil
}

func (s *opusStream) packet(pkt []byte) error {
	n, err := s.dec.decode(pkt)
	if err != nil {
		s.badRun++
		if s.badRun >= maxBadPackets {
			return fmt.Errorf("media: %d consecutive undecodable opus packets: %w", s.badRun, err)
		}
		n, perr := opusPacketSamples(pkt)
		if perr != nil {
			n = s.lastFrame
		}
		s.emit(make([]int16, n))
		return nil
	}
	s.badRun = 0
	s.lastFrame = n
	pcm := make([]int16, n)
	copy(pcm, s.dec.buf[:n])
	s.emit(pcm)
	return nil
}

func (s *opusStream) emit(pcm []int16) {
	if s.preSkip > 0 {
		k := min(s.preSkip, len(pcm))
		s.preSkip -= k
		pcm = pcm[k:]
	}
	if len(pcm) > 0 {
		s.out(pcm)
	}
}

// parseOpusHead returns the pre-skip (in 16 kHz samples) of an OpusHead
// header (RFC 7845 §5.1).
func parseOpusHead(b []byte) (preSkip int, err error) {
	if len(b) < 19 || string(b[:8]) != "OpusHead" {
		return 0, errors.New("media: bad OpusHead")
	}
	if b[8]>>4 != 0 {
		return 0, fmt.Errorf("media: OpusHead version %d: %w", b[8], ErrUnsupported)
	}
	if ch := b[9]; ch == 0 || (b[18] == 0 && ch > 2) {
		return 0, fmt.Errorf("media: OpusHead with %d channels: %w", ch, ErrUnsupported)
	}
	if b[18] != 0 {
		return 0, fmt.Errorf("media: OpusHead channel mapping family %d: %w", b[18], ErrUnsupported)
	}
	return int(uint16(b[10])|uint16(b[11])<<8) / 3, nil
}

package media

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The Ogg demuxer parses pages incrementally (RFC 3533) instead of using
// pion's oggreader: oggreader pulls from an io.Reader (a pipe and a goroutine
// per stream) and returns page payloads, not packets, so packets spanning
// pages would need reassembly on top anyway.

const (
	oggHeaderLen = 27
	// maxOggPacket bounds one reassembled packet; an Opus packet is at most
	// a few kilobytes, and OpusTags is small in anything a browser writes.
	maxOggPacket = 1 << 20
)

var oggCRCTable = func() *[256]uint32 {
	var t [256]uint32
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return &t
}()

func oggCRC(crc uint32, b []byte) uint32 {
	for _, c := range b {
		crc = crc<<8 ^ oggCRCTable[byte(crc>>24)^c]
	}
	return crc
}

type oggDecoder struct {
	opus *opusStream
	buf  []byte
	err  error

	serial  uint32
	haveBOS bool
	packets int    // packets of the chosen logical stream seen so far
	partial []byte // packet continued onto the next page
}

func newOggDecoder(out PCMFunc) (*oggDecoder, error) {
	s, err := newOpusStream(out)
	if err != nil {
		return nil, err
	}
	return &oggDecoder{opus: s}, nil
}

func (d *oggDecoder) Write(chunk []byte) error {
	if d.err != nil {
		return d.err
	}
	d.buf = append(d.buf, chunk...)
	off := 0
	for {
		n, err := d.page(d.buf[off:])
		if err != nil {
			d.err = fmt.Errorf("media: ogg: %w", err)
			break
		}
		if n == 0 {
			break
		}
		off += n
	}
	d.buf = d.buf[:copy(d.buf, d.buf[off:])]
	return d.err
}

func (d *oggDecoder) Close() error {
	if d.err != nil {
		return d.err
	}
	if len(d.buf) > 0 || len(d.partial) > 0 {
		d.err = fmt.Errorf("media: ogg: %w", errTruncated)
		return d.err
	}
	d.err = errors.New("media: ogg: decoder closed")
	return nil
}

// page handles one whole page at the start of b and returns its length, or 0
// when b does not hold a whole page yet.
func (d *oggDecoder) page(b []byte) (int, error) {
	if len(b) < 4 {
		if string(b) != "OggS"[:len(b)] {
			return 0, errors.New("missing OggS capture pattern")
		}
		return 0, nil
	}
	if string(b[:4]) != "OggS" {
		return 0, errors.New("missing OggS capture pattern")
	}
	if len(b) < oggHeaderLen {
		return 0, nil
	}
	if b[4] != 0 {
		return 0, fmt.Errorf("ogg version %d", b[4])
	}
	nseg := int(b[26])
	if len(b) < oggHeaderLen+nseg {
		return 0, nil
	}
	lacing := b[oggHeaderLen : oggHeaderLen+nseg]
	bodyLen := 0
	for _, l := range lacing {
		bodyLen += int(l)
	}
	total := oggHeaderLen + nseg + bodyLen
	if len(b) < total {
		return 0, nil
	}
	crc := oggCRC(0, b[:22])
	crc = oggCRC(crc, []byte{0, 0, 0, 0})
	crc = oggCRC(crc, b[26:total])
	if crc != binary.LittleEndian.Uint32(b[22:26]) {
		return 0, errors.New("page checksum mismatch")
	}

	flags := b[5]
	serial := binary.LittleEndian.Uint32(b[14:18])
	if flags&0x02 != 0 && !d.haveBOS {
		d.haveBOS, d.serial = true, serial
	}
	if !d.haveBOS {
		return 0, errors.New("stream does not start with a BOS page")
	}
	if serial != d.serial {
		return total, nil // another logical stream (e.g. a video track): ignored
	}
	if flags&0x01 == 0 && len(d.partial) > 0 {
		return 0, errors.New("continued packet not continued")
	}

	body := b[oggHeaderLen+nseg : total]
	start := 0
	for _, l := range lacing {
		end := start + int(l)
		d.partial = append(d.partial, body[start:end]...)
		if len(d.partial) > maxOggPacket {
			return 0, errors.New("packet too large")
		}
		start = end
		if l == 255 {
			continue
		}
		pkt := d.partial
		d.partial = d.partial[:0]
		if err := d.packet(pkt); err != nil {
			return 0, err
		}
	}
	return total, nil
}

func (d *oggDecoder) packet(pkt []byte) error {
	d.packets++
	switch d.packets {
	case 1:
		preSkip, err := parseOpusHead(pkt)
		if err != nil {
			return err
		}
		d.opus.preSkip = preSkip
		return nil
	case 2:
		if len(pkt) < 8 || string(pkt[:8]) != "OpusTags" {
			return errors.New("missing OpusTags")
		}
		return nil
	}
	if len(pkt) == 0 {
		return nil
	}
	return d.opus.packet(pkt)
}

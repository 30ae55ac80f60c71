package media

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/at-wat/ebml-go"
)

// The WebM demuxer is a small hand-written incremental EBML reader rather than
// ebml-go's Unmarshal: Unmarshal decodes a whole document into a struct from
// an io.Reader, so it would need a goroutine and a pipe per stream, and it
// keeps every Cluster of an hour-long recording in memory. MediaRecorder's
// output is simple (unknown-size Segment and Clusters of SimpleBlocks), so the
// reader walks element headers one by one, treats the few master elements it
// cares about as transparent (which is exactly what makes unknown sizes work),
// skips everything else by counting bytes, and buffers only single blocks.
// ebml-go still parses the block bodies (UnmarshalBlock handles all lacings).

const (
	idEBML         = 0x1A45DFA3
	idSegment      = 0x18538067
	idCluster      = 0x1F43B675
	idTracks       = 0x1654AE6B
	idTrackEntry   = 0xAE
	idTrackNumber  = 0xD7
	idCodecID      = 0x86
	idCodecPrivate = 0x63A2
	idBlockGroup   = 0xA0
	idBlock        = 0xA1
	idSimpleBlock  = 0xA3

	// maxWebMElement bounds the one element held in memory at a time. An Opus
	// block is a few hundred bytes; this leaves room for laced blocks.
	maxWebMElement = 1 << 20
	unknownSize    = -1
)

var errTruncated = errors.New("stream ended mid-element")

type webmTrack struct {
	number  uint64
	codec   string
	private []byte
}

type webmDecoder struct {
	opus *opusStream
	buf  []byte
	err  error

	started  bool  // the EBML header element has been seen
	skip     int64 // bytes of the current element still to discard
	readID   uint32
	readSize int // >0: the current element's body is being buffered

	tracks    []webmTrack
	opusTrack uint64 // 0 until the first block picks the track
}

func newWebMDecoder(out PCMFunc) (*webmDecoder, error) {
	s, err := newOpusStream(out)
	if err != nil {
		return nil, err
	}
	return &webmDecoder{opus: s}, nil
}

func (d *webmDecoder) Write(chunk []byte) error {
	if d.err != nil {
		return d.err
	}
	if d.skip > 0 && len(d.buf) == 0 {
		n := min(int64(len(chunk)), d.skip)
		d.skip -= n
		chunk = chunk[n:]
	}
	d.buf = append(d.buf, chunk...)
	n, err := d.parse(d.buf)
	d.buf = d.buf[:copy(d.buf, d.buf[n:])]
	if err != nil {
		d.err = fmt.Errorf("media: webm: %w", err)
	}
	return d.err
}

func (d *webmDecoder) Close() error {
	if d.err != nil {
		return d.err
	}
	if d.skip > 0 || d.readSize > 0 || len(d.buf) > 0 {
		d.err = fmt.Errorf("media: webm: %w", errTruncated)
		return d.err
	}
	d.err = errors.New("media: webm: decoder closed")
	return nil
}

// parse consumes whole elements (or the skippable part of one) from b and
// returns how many bytes it used.
func (d *webmDecoder) parse(b []byte) (int, error) {
	off := 0
	for {
		if d.skip > 0 {
			n := min(int64(len(b)-off), d.skip)
			d.skip -= n
			off += int(n)
			if d.skip > 0 {
				return off, nil
			}
		}
		if d.readSize > 0 {
			if len(b)-off < d.readSize {
				return off, nil
			}
			body := b[off : off+d.readSize]
			off += d.readSize
			d.readSize = 0
			if err := d.element(d.readID, body); err != nil {
				return off, err
			}
		}
		id, size, n, err := readElementHeader(b[off:])
		if err != nil {
			return off, err
		}
		if n == 0 {
			return off, nil
		}
		off += n
		if !d.started {
			if id != idEBML {
				return off, errors.New("not a WebM/Matroska stream (no EBML header)")
			}
			d.started = true
		}
		switch id {
		case idSegment, idCluster, idTracks, idBlockGroup:
			// Transparent: their children follow directly.
		case idTrackEntry:
			d.tracks = append(d.tracks, webmTrack{})
			if len(d.tracks) > 64 {
				return off, errors.New("too many tracks")
			}
		case idTrackNumber, idCodecID, idCodecPrivate, idBlock, idSimpleBlock:
			if size == unknownSize || size > maxWebMElement {
				return off, fmt.Errorf("element %#x of size %d", id, size)
			}
			if size == 0 {
				if err := d.element(id, nil); err != nil {
					return off, err
				}
				continue
			}
			d.readID, d.readSize = id, int(size)
		default:
			if size == unknownSize {
				return off, fmt.Errorf("element %#x of unknown size", id)
			}
			d.skip = size
		}
	}
}

func (d *webmDecoder) element(id uint32, body []byte) error {
	var track *webmTrack
	if len(d.tracks) > 0 {
		track = &d.tracks[len(d.tracks)-1]
	}
	switch id {
	case idTrackNumber, idCodecID, idCodecPrivate:
		if track == nil {
			return fmt.Errorf("element %#x outside a TrackEntry", id)
		}
		switch id {
		case idTrackNumber:
			if len(body) > 8 {
				return errors.New("TrackNumber too long")
			}
			track.number = 0
			for _, c := range body {
				track.number = track.number<<8 | uint64(c)
			}
		case idCodecID:
			track.codec = string(bytes.TrimRight(body, "\x00"))
		case idCodecPrivate:
			track.private = bytes.Clone(body)
		}
		return nil
	}
	return d.block(body)
}

func (d *webmDecoder) block(body []byte) error {
	if d.opusTrack == 0 {
		if err := d.pickTrack(); err != nil {
			return err
		}
	}
	blk, err := unmarshalBlock(body)
	if err != nil {
		return err
	}
	if blk.TrackNumber != d.opusTrack {
		return nil
	}
	for _, pkt := range blk.Data {
		if err := d.opus.packet(pkt); err != nil {
			return err
		}
	}
	return nil
}

func (d *webmDecoder) pickTrack() error {
	if len(d.tracks) == 0 {
		return errors.New("block before the track header")
	}
	for _, t := range d.tracks {
		if t.codec != "A_OPUS" || t.number == 0 {
			continue
		}
		d.opusTrack = t.number
		if len(t.private) > 0 {
			preSkip, err := parseOpusHead(t.private)
			if err != nil {
				return err
			}
			d.opus.preSkip = preSkip
		}
		return nil
	}
	return fmt.Errorf("no Opus track: %w", ErrUnsupported)
}

// unmarshalBlock parses a (Simple)Block body with ebml-go, turning a panic on
// hostile input into an error.
func unmarshalBlock(body []byte) (blk *ebml.Block, err error) {
	defer func() {
		if r := recover(); r != nil {
			blk, err = nil, fmt.Errorf("malformed block: %v", r)
		}
	}()
	blk, err = ebml.UnmarshalBlock(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("malformed block: %w", err)
	}
	return blk, nil
}

// readElementHeader reads an EBML element ID and data size from b. n is 0 when
// b does not yet hold the whole header. size is unknownSize for the reserved
// all-ones value.
func readElementHeader(b []byte) (id uint32, size int64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, 0, nil
	}
	idLen := vintLen(b[0])
	if idLen == 0 || idLen > 4 {
		return 0, 0, 0, fmt.Errorf("invalid element ID byte %#x", b[0])
	}
	if len(b) < idLen+1 {
		return 0, 0, 0, nil
	}
	for _, c := range b[:idLen] {
		id = id<<8 | uint32(c)
	}
	sizeLen := vintLen(b[idLen])
	if sizeLen == 0 {
		return 0, 0, 0, fmt.Errorf("invalid element size byte %#x", b[idLen])
	}
	if len(b) < idLen+sizeLen {
		return 0, 0, 0, nil
	}
	sb := b[idLen : idLen+sizeLen]
	v := uint64(sb[0] & (0xff >> sizeLen))
	allOnes := v == uint64(0xff>>sizeLen)
	for _, c := range sb[1:] {
		v = v<<8 | uint64(c)
		allOnes = allOnes && c == 0xff
	}
	if allOnes {
		return id, unknownSize, idLen + sizeLen, nil
	}
	if v > 1<<56 {
		return 0, 0, 0, fmt.Errorf("element size %d too large", v)
	}
	return id, int64(v), idLen + sizeLen, nil
}

// vintLen is the length of an EBML variable-size integer from its first byte,
// 0 for the invalid 0x00.
func vintLen(first byte) int {
	for i := 0; i < 8; i++ {
		if first&(0x80>>i) != 0 {
			return i + 1
		}
	}
	return 0
}

package media

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// EBML IDs the duration fix-up reads (beside webm.go's).
const (
	idSeekHead      = 0x114D9B74
	idInfo          = 0x1549A966
	idTimecodeScale = 0x2AD7B1
	idDuration      = 0x4489
)

// maxWebMHead bounds what is read before the Info element (EBML header and
// the Segment's header); MediaRecorder writes a few dozen bytes there.
const maxWebMHead = 64 << 10

// ErrNoDurationFix is returned by AddWebMDuration when the file needs no
// fix-up (it has a Duration already) or cannot take one safely (a SeekHead,
// whose offsets the inserted bytes would break): the file is fine as it is.
var ErrNoDurationFix = errors.New("media: webm: no duration fix-up needed or possible")

// AddWebMDuration copies the WebM in src to dst with a Duration element
// added to its Segment Info. MediaRecorder writes live WebM without one, so
// a player shows no length and cannot seek well; with it, the file plays
// like any other. It streams: memory is bounded by the Info element. It
// returns ErrNoDurationFix, having written nothing, when the file already
// has a Duration or has a SeekHead.
func AddWebMDuration(dst io.Writer, src io.Reader, durationMS int64) error {
	r := bufio.NewReaderSize(src, 64<<10)
	var head []byte
	next := func(limit int64) (uint32, int64, []byte, error) {
		for n := 2; ; n++ {
			b, err := r.Peek(n)
			if len(b) < n {
				return 0, 0, nil, fmt.Errorf("media: webm: truncated header: %w", err)
			}
			id, size, hl, err := readElementHeader(b)
			if err != nil {
				return 0, 0, nil, fmt.Errorf("media: webm: %w", err)
			}
			if hl > 0 {
				h := make([]byte, hl)
				_, _ = io.ReadFull(r, h)
				if size != unknownSize && size > limit {
					return 0, 0, nil, fmt.Errorf("media: webm: element %#x of %d bytes", id, size)
				}
				return id, size, h, nil
			}
			if n > 12 {
				return 0, 0, nil, errors.New("media: webm: element header too long")
			}
		}
	}
	id, size, h, err := next(maxWebMHead)
	if err != nil {
		return err
	}
	if id != idEBML || size == unknownSize {
		return errors.New("media: webm: not an EBML file")
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		return fmt.Errorf("media: webm: EBML header: %w", err)
	}
	head = append(append(head, h...), body...)
	id, segSize, _, err := next(math.MaxInt64)
	if err != nil {
		return err
	}
	if id != idSegment {
		return errors.New("media: webm: no Segment after the EBML header")
	}
	// Segment children up to Info are copied as they are (there are none in
	// MediaRecorder's output); a SeekHead would point past the insertion.
	var before []byte
	for {
		id, size, h, err := next(maxWebMHead)
		if err != nil {
			return err
		}
		if id == idSeekHead {
			return ErrNoDurationFix
		}
		if size == unknownSize {
			return errors.New("media: webm: element of unknown size before Info")
		}
		body := make([]byte, size)
		if _, err := io.ReadFull(r, body); err != nil {
			return fmt.Errorf("media: webm: %w", err)
		}
		if id != idInfo {
			before = append(append(before, h...), body...)
			if len(before) > maxWebMHead {
				return errors.New("media: webm: no Info near the start")
			}
			continue
		}
		scale := uint64(1_000_000)
		for off := 0; off < len(body); {
			cid, csize, n, err := readElementHeader(body[off:])
			if err != nil || n == 0 || csize == unknownSize || off+n+int(csize) > len(body) {
				return errors.New("media: webm: malformed Info")
			}
			switch cid {
			case idDuration:
				return ErrNoDurationFix
			case idTimecodeScale:
				scale = 0
				for _, c := range body[off+n : off+n+int(csize)] {
					scale = scale<<8 | uint64(c)
				}
			}
			off += n + int(csize)
		}
		if scale == 0 {
			return errors.New("media: webm: TimecodeScale 0")
		}
		dur := binary.BigEndian.AppendUint64([]byte{0x44, 0x89, 0x88}, math.Float64bits(float64(durationMS)*1e6/float64(scale)))
		info := append(append(vint8(idInfo, int64(len(body)+len(dur))), body...), dur...)

		seg := []byte{0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff} // unknown size
		if segSize != unknownSize {
			seg = vint8(idSegment, segSize+int64(len(info)-len(h)-len(body)))
		}
		for _, b := range [][]byte{head, seg, before, info} {
			if _, err := dst.Write(b); err != nil {
				return err
			}
		}
		_, err = io.Copy(dst, r)
		return err
	}
}

// vint8 is an element header: the 4-byte id and size as an 8-byte vint.
func vint8(id uint32, size int64) []byte {
	b := binary.BigEndian.AppendUint32(nil, id)
	return binary.BigEndian.AppendUint64(b, uint64(size)|0x01<<56)
}

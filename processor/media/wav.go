package media

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// wavDecoder reads a RIFF/WAVE stream of 16-bit PCM (plain or
// WAVE_FORMAT_EXTENSIBLE) with any rate and channel count, downmixes to mono
// and resamples to 16 kHz. A data chunk of size 0 or 0xFFFFFFFF (written by
// streaming encoders that cannot seek back) runs to the end of the stream.
type wavDecoder struct {
	out PCMFunc
	buf []byte
	err error

	headerDone bool
	skip       int64 // bytes of a non-data chunk still to discard
	channels   int
	rate       int
	dataLeft   int64 // -1: to the end of the stream
	pcm        *pcmDecoder
}

const maxWAVFmt = 1024

func newWAVDecoder(out PCMFunc) *wavDecoder { return &wavDecoder{out: out} }

func (d *wavDecoder) Write(chunk []byte) error {
	if d.err != nil {
		return d.err
	}
	if d.pcm != nil {
		return d.data(chunk)
	}
	d.buf = append(d.buf, chunk...)
	if err := d.header(); err != nil {
		d.err = fmt.Errorf("media: wav: %w", err)
		return d.err
	}
	if d.pcm != nil {
		rest := d.buf
		d.buf = nil
		return d.data(rest)
	}
	return nil
}

func (d *wavDecoder) data(b []byte) error {
	if d.dataLeft >= 0 {
		if int64(len(b)) > d.dataLeft {
			b = b[:d.dataLeft] // chunks after data (LIST, id3) are ignored
		}
		d.dataLeft -= int64(len(b))
	}
	return d.pcm.Write(b)
}

func (d *wavDecoder) Close() error {
	if d.err != nil {
		return d.err
	}
	if d.pcm == nil {
		if len(d.buf) == 0 && !d.headerDone && d.skip == 0 {
			d.err = errors.New("media: wav: decoder closed")
			return nil
		}
		d.err = fmt.Errorf("media: wav: %w", errTruncated)
		return d.err
	}
	d.err = d.pcm.Close()
	if d.err != nil {
		return d.err
	}
	d.err = errors.New("media: wav: decoder closed")
	return nil
}

// header consumes the RIFF header and chunks up to the data chunk's header.
func (d *wavDecoder) header() error {
	b := d.buf
	defer func() { d.buf = b }()
	if !d.headerDone {
		if len(b) < 12 {
			if !matchPrefix(b, "RIFF") {
				return errors.New("not a RIFF stream")
			}
			return nil
		}
		if string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
			return errors.New("not a RIFF/WAVE stream")
		}
		b = b[12:]
		d.headerDone = true
	}
	for {
		if d.skip > 0 {
			n := min(int64(len(b)), d.skip)
			d.skip -= n
			b = b[n:]
			if d.skip > 0 {
				return nil
			}
		}
		if len(b) < 8 {
			return nil
		}
		id := string(b[:4])
		size := int64(binary.LittleEndian.Uint32(b[4:8]))
		switch id {
		case "fmt ":
			if size < 16 || size > maxWAVFmt {
				return fmt.Errorf("fmt chunk of %d bytes", size)
			}
			if int64(len(b)) < 8+size+size&1 {
				return nil
			}
			if err := d.format(b[8 : 8+size]); err != nil {
				return err
			}
			b = b[8+size+size&1:]
		case "data":
			if d.channels == 0 {
				return errors.New("data chunk before fmt chunk")
			}
			d.dataLeft = size
			if size == 0 || size == 0xFFFFFFFF {
				d.dataLeft = -1
			}
			d.pcm = newPCMDecoder(d.rate, d.channels, d.out)
			b = b[8:]
			return nil
		default:
			d.skip = size + size&1
			b = b[8:]
		}
	}
}

func (d *wavDecoder) format(f []byte) error {
	tag := binary.LittleEndian.Uint16(f[0:2])
	channels := int(binary.LittleEndian.Uint16(f[2:4]))
	rate := int(binary.LittleEndian.Uint32(f[4:8]))
	bits := binary.LittleEndian.Uint16(f[14:16])
	if tag == 0xFFFE { // WAVE_FORMAT_EXTENSIBLE: the sub-format GUID starts with the tag
		if len(f) < 26 {
			return errors.New("short WAVE_FORMAT_EXTENSIBLE fmt chunk")
		}
		tag = binary.LittleEndian.Uint16(f[24:26])
	}
	if tag != 1 {
		return fmt.Errorf("format tag %#x: %w", tag, ErrUnsupported)
	}
	if bits != 16 {
		return fmt.Errorf("%d-bit samples: %w", bits, ErrUnsupported)
	}
	if channels < 1 || channels > maxChannels {
		return fmt.Errorf("%d channels: %w", channels, ErrUnsupported)
	}
	if rate < minRate || rate > maxRate {
		return fmt.Errorf("sample rate %d: %w", rate, ErrUnsupported)
	}
	d.channels, d.rate = channels, rate
	return nil
}

// matchPrefix reports whether b and s agree on their common prefix.
func matchPrefix(b []byte, s string) bool {
	n := min(len(b), len(s))
	return string(b[:n]) == s[:n]
}

// pcmDecoder turns interleaved s16le frames of any rate and channel count into
// 16 kHz mono, holding a partial frame across chunk boundaries.
type pcmDecoder struct {
	out      PCMFunc
	channels int
	rs       *Resampler
	partial  []byte
	frame    []float64
	closed   bool
}

func newPCMDecoder(rate, channels int, out PCMFunc) *pcmDecoder {
	return &pcmDecoder{out: out, channels: channels, rs: NewResampler(rate, SampleRate)}
}

func (d *pcmDecoder) Write(chunk []byte) error {
	if d.closed {
		return errors.New("media: pcm: decoder closed")
	}
	frameBytes := 2 * d.channels
	if len(d.partial) > 0 {
		need := frameBytes - len(d.partial)
		if len(chunk) < need {
			d.partial = append(d.partial, chunk...)
			return nil
		}
		d.partial = append(d.partial, chunk[:need]...)
		chunk = chunk[need:]
		d.mix(d.partial)
		d.partial = d.partial[:0]
	}
	whole := len(chunk) / frameBytes * frameBytes
	d.mix(chunk[:whole])
	d.partial = append(d.partial, chunk[whole:]...)
	d.emit(d.rs.process(d.frame))
	d.frame = d.frame[:0]
	return nil
}

// mix appends the mono average of whole frames in b to d.frame.
func (d *pcmDecoder) mix(b []byte) {
	frameBytes := 2 * d.channels
	for i := 0; i+frameBytes <= len(b); i += frameBytes {
		var sum float64
		for c := range d.channels {
			sum += float64(int16(binary.LittleEndian.Uint16(b[i+2*c:])))
		}
		d.frame = append(d.frame, sum/float64(d.channels))
	}
}

func (d *pcmDecoder) emit(pcm []int16) {
	if len(pcm) > 0 {
		d.out(pcm)
	}
}

func (d *pcmDecoder) Close() error {
	if d.closed {
		return errors.New("media: pcm: decoder closed")
	}
	d.closed = true
	d.emit(d.rs.Flush())
	if len(d.partial) > 0 {
		return fmt.Errorf("media: pcm: %w (%d stray bytes)", errTruncated, len(d.partial))
	}
	return nil
}

// DecodeWAV decodes a whole RIFF/WAVE file of 16-bit PCM to 16 kHz mono, as
// NewStreamDecoder("audio/wav", …) does, and reports the file's own rate and
// channel count.
func DecodeWAV(file []byte) (pcm []int16, rate, channels int, err error) {
	d := newWAVDecoder(func(s []int16) { pcm = append(pcm, s...) })
	if err := d.Write(file); err != nil {
		return nil, 0, 0, err
	}
	if err := d.Close(); err != nil {
		return nil, 0, 0, err
	}
	return pcm, d.rate, d.channels, nil
}

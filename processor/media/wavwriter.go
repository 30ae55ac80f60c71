package media

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// wavHeaderLen is the canonical 44-byte RIFF/WAVE header: RIFF, fmt (PCM), data.
const wavHeaderLen = 44

// WAVWriter streams 16 kHz s16le mono PCM to a WAV file with bounded memory.
// The header is written first with zero sizes; Finish writes the real sizes,
// so the file is a valid WAV after every Finish (and writing may go on after
// one: the next Finish fixes the sizes again).
type WAVWriter struct {
	f       io.WriteSeeker
	buf     *bufio.Writer
	samples int64
	err     error
}

// NewWAVWriter writes the header at the current position of f, which must
// be the start of an empty file.
func NewWAVWriter(f io.WriteSeeker) (*WAVWriter, error) {
	w := &WAVWriter{f: f, buf: bufio.NewWriterSize(f, 64<<10)}
	if _, err := w.buf.Write(wavHeader(0)); err != nil {
		return nil, fmt.Errorf("media: wav header: %w", err)
	}
	return w, nil
}

// maxWAVSamples keeps the RIFF sizes within 32 bits.
const maxWAVSamples = (math.MaxUint32 - wavHeaderLen) / 2

// Write appends samples. After an error every Write returns it.
func (w *WAVWriter) Write(pcm []int16) error {
	if w.err != nil {
		return w.err
	}
	if w.samples+int64(len(pcm)) > maxWAVSamples {
		w.err = errors.New("media: wav: the file would exceed 4 GiB")
		return w.err
	}
	var b [2]byte
	for _, v := range pcm {
		binary.LittleEndian.PutUint16(b[:], uint16(v))
		if _, err := w.buf.Write(b[:]); err != nil {
			w.err = fmt.Errorf("media: wav: %w", err)
			return w.err
		}
	}
	w.samples += int64(len(pcm))
	return nil
}

// Samples is how many samples were written.
func (w *WAVWriter) Samples() int64 { return w.samples }

// Finish flushes buffered samples and writes the header's sizes; it leaves
// the position at the end of the file.
func (w *WAVWriter) Finish() error {
	if w.err != nil {
		return w.err
	}
	if err := w.buf.Flush(); err != nil {
		w.err = fmt.Errorf("media: wav: %w", err)
		return w.err
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		w.err = fmt.Errorf("media: wav: %w", err)
		return w.err
	}
	if _, err := w.f.Write(wavHeader(w.samples)); err != nil {
		w.err = fmt.Errorf("media: wav: %w", err)
		return w.err
	}
	if _, err := w.f.Seek(0, io.SeekEnd); err != nil {
		w.err = fmt.Errorf("media: wav: %w", err)
		return w.err
	}
	return nil
}

func wavHeader(samples int64) []byte {
	data := uint32(samples * 2)
	h := make([]byte, 0, wavHeaderLen)
	h = append(h, "RIFF"...)
	h = binary.LittleEndian.AppendUint32(h, 36+data)
	h = append(h, "WAVEfmt "...)
	h = binary.LittleEndian.AppendUint32(h, 16)
	h = binary.LittleEndian.AppendUint16(h, 1) // PCM
	h = binary.LittleEndian.AppendUint16(h, 1) // mono
	h = binary.LittleEndian.AppendUint32(h, SampleRate)
	h = binary.LittleEndian.AppendUint32(h, SampleRate*2) // byte rate
	h = binary.LittleEndian.AppendUint16(h, 2)            // block align
	h = binary.LittleEndian.AppendUint16(h, 16)           // bits per sample
	h = append(h, "data"...)
	h = binary.LittleEndian.AppendUint32(h, data)
	return h
}

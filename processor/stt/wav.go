package stt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// EncodeWAV wraps mono s16le samples in a RIFF/WAVE container.
func EncodeWAV(pcm []int16, rate int) []byte {
	var b bytes.Buffer
	data := uint32(2 * len(pcm))
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, 36+data)
	b.WriteString("WAVEfmt ")
	binary.Write(&b, binary.LittleEndian, struct {
		Size             uint32
		Format, Channels uint16
		Rate, ByteRate   uint32
		BlockAlign, Bits uint16
	}{16, 1, 1, uint32(rate), uint32(rate * 2), 2, 16})
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, data)
	binary.Write(&b, binary.LittleEndian, pcm)
	return b.Bytes()
}

// WAVFormat describes a decoded WAV file.
type WAVFormat struct {
	Rate, Channels, Bits int
}

// ErrNotPCMWAV is returned for WAV files that are not 16-bit integer PCM.
var ErrNotPCMWAV = errors.New("not a 16-bit PCM WAV file")

// DecodeWAV reads a 16-bit PCM WAV file and returns its interleaved samples.
// A data chunk whose size field is 0 or too large (as written by streaming
// tools such as espeak-ng --stdout) extends to the end of the input.
func DecodeWAV(r io.Reader) ([]int16, WAVFormat, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, WAVFormat{}, fmt.Errorf("read wav: %w", err)
	}
	if len(raw) < 12 || string(raw[:4]) != "RIFF" || string(raw[8:12]) != "WAVE" {
		return nil, WAVFormat{}, fmt.Errorf("%w: no RIFF/WAVE header", ErrNotPCMWAV)
	}
	var f WAVFormat
	haveFmt := false
	pos := 12
	for pos+8 <= len(raw) {
		id := string(raw[pos : pos+4])
		size := int(binary.LittleEndian.Uint32(raw[pos+4 : pos+8]))
		body := pos + 8
		switch id {
		case "fmt ":
			if size < 16 || body+16 > len(raw) {
				return nil, f, fmt.Errorf("%w: short fmt chunk", ErrNotPCMWAV)
			}
			format := binary.LittleEndian.Uint16(raw[body:])
			f.Channels = int(binary.LittleEndian.Uint16(raw[body+2:]))
			f.Rate = int(binary.LittleEndian.Uint32(raw[body+4:]))
			f.Bits = int(binary.LittleEndian.Uint16(raw[body+14:]))
			if (format != 1 && format != 0xFFFE) || f.Bits != 16 || f.Channels < 1 {
				return nil, f, fmt.Errorf("%w: format %d, %d bits, %d channels", ErrNotPCMWAV, format, f.Bits, f.Channels)
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, f, fmt.Errorf("%w: data before fmt", ErrNotPCMWAV)
			}
			end := body + size
			if size == 0 || end > len(raw) || size == 0xFFFFFFFF {
				end = len(raw)
			}
			n := (end - body) / 2
			pcm := make([]int16, n)
			binary.Decode(raw[body:body+2*n], binary.LittleEndian, pcm)
			return pcm, f, nil
		}
		pos = body + size + size%2
	}
	return nil, f, fmt.Errorf("%w: no data chunk", ErrNotPCMWAV)
}

// Mono averages interleaved channels.
func Mono(pcm []int16, channels int) []int16 {
	if channels <= 1 {
		return pcm
	}
	out := make([]int16, len(pcm)/channels)
	for i := range out {
		var sum int
		for c := range channels {
			sum += int(pcm[i*channels+c])
		}
		out[i] = int16(sum / channels)
	}
	return out
}

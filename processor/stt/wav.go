package stt

import (
	"bytes"
	"encoding/binary"
)

// EncodeWAV wraps mono s16le samples in a RIFF/WAVE container (the decoder
// is media.DecodeWAV).
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

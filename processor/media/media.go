// Package media turns a candidate's audio into 16 kHz s16le mono PCM, the one
// format the rest of the processor speaks. Every decoder is pure Go: Opus
// through pion/opus, WebM/Matroska and Ogg demuxed by small incremental
// parsers in this package, WAV and raw PCM read and resampled here.
//
// Audio arrives three ways: as chunks of one continuous recording posted to
// /process-audio (StreamDecoder, ordered by a Reassembler), as RTP over WebRTC
// (WHIP), or as raw PCM over a WebSocket (no decoding needed).
package media

import (
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
)

// SampleRate is the rate of every PCM slice this package produces.
const SampleRate = 16000

// PCMFunc receives 16 kHz mono s16 samples. It is called in stream order from
// one goroutine per stream. The slice belongs to the callee: the package never
// touches it again.
type PCMFunc func(samples []int16)

// ErrUnsupported is returned (wrapped) for a media type or codec this package
// cannot decode.
var ErrUnsupported = errors.New("unsupported media type")

// StreamDecoder decodes the bytes of ONE continuous stream, in order, cut at
// arbitrary boundaries. Write returns an error once the stream is found to be
// malformed; after that every Write returns the same error. Close reports a
// stream that ended in the middle of a frame or before its header.
type StreamDecoder interface {
	Write(chunk []byte) error
	Close() error
}

// NewStreamDecoder returns a decoder for mimeType that hands decoded PCM to
// out. Accepted types (parameters are case-insensitive):
//
//	"" or audio/webm[;codecs=opus]  MediaRecorder's default (also video/webm)
//	audio/ogg[;codecs=opus]         Ogg/Opus (also application/ogg, audio/opus)
//	audio/wav                       RIFF PCM 16-bit, any rate and channel count
//	audio/pcm;rate=16000            raw s16le; rate and channels parameters honoured
//
// Anything else returns an error wrapping ErrUnsupported.
func NewStreamDecoder(mimeType string, out PCMFunc) (StreamDecoder, error) {
	if out == nil {
		return nil, errors.New("media: nil PCMFunc")
	}
	if strings.TrimSpace(mimeType) == "" {
		mimeType = "audio/webm;codecs=opus"
	}
	typ, params, err := mime.ParseMediaType(mimeType)
	if err != nil {
		return nil, fmt.Errorf("media: %q: %w", mimeType, ErrUnsupported)
	}
	switch typ {
	case "audio/webm", "video/webm", "audio/x-matroska", "video/x-matroska":
		if err := checkOpusCodecs(params); err != nil {
			return nil, fmt.Errorf("media: %q: %w", mimeType, err)
		}
		return newWebMDecoder(out)
	case "audio/ogg", "application/ogg", "audio/opus":
		if err := checkOpusCodecs(params); err != nil {
			return nil, fmt.Errorf("media: %q: %w", mimeType, err)
		}
		return newOggDecoder(out)
	case "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave":
		return newWAVDecoder(out), nil
	case "audio/pcm", "audio/l16":
		rate, channels := SampleRate, 1
		if s, ok := params["rate"]; ok {
			if rate, err = strconv.Atoi(s); err != nil || rate < minRate || rate > maxRate {
				return nil, fmt.Errorf("media: %q: rate: %w", mimeType, ErrUnsupported)
			}
		}
		if s, ok := params["channels"]; ok {
			if channels, err = strconv.Atoi(s); err != nil || channels < 1 || channels > maxChannels {
				return nil, fmt.Errorf("media: %q: channels: %w", mimeType, ErrUnsupported)
			}
		}
		return newPCMDecoder(rate, channels, out), nil
	}
	return nil, fmt.Errorf("media: %q: %w", mimeType, ErrUnsupported)
}

// checkOpusCodecs refuses a codecs parameter that does not name Opus. Other
// codecs beside it (video/webm;codecs="vp8,opus") are fine: only the Opus
// track is read.
func checkOpusCodecs(params map[string]string) error {
	codecs, ok := params["codecs"]
	if !ok {
		return nil
	}
	for _, c := range strings.Split(codecs, ",") {
		if strings.EqualFold(strings.TrimSpace(c), "opus") {
			return nil
		}
	}
	return fmt.Errorf("codecs %q: %w", codecs, ErrUnsupported)
}

package openaifake

import (
	"bytes"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"candor/processor/stt"
)

func sine(hz float64, ms, rate int) []int16 {
	out := make([]int16, ms*rate/1000)
	for i := range out {
		out[i] = int16(9000 * math.Sin(2*math.Pi*hz*float64(i)/float64(rate)))
	}
	return out
}

func wav(pcm []int16, rate int) []byte { return stt.EncodeWAV(pcm, rate) }

type field struct{ name, filename, value string }

func multipartBody(t *testing.T, fields []field) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, f := range fields {
		if f.filename != "" {
			w, _ := mw.CreateFormFile(f.name, f.filename)
			io.WriteString(w, f.value)
		} else {
			mw.WriteField(f.name, f.value)
		}
	}
	mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

func TestDescribeToneNamesThePitchAndIgnoresSilence(t *testing.T) {
	tests := []struct {
		name string
		pcm  []int16
		rate int
		want string
	}{
		{"a 440 Hz tone at 16 kHz rounds to 450", sine(440, 500, 16000), 16000, "tone 450"},
		{"a 300 Hz tone at 24 kHz", sine(300, 500, 24000), 24000, "tone 300"},
		{"a tone padded with silence keeps its pitch", append(make([]int16, 8000), sine(900, 400, 16000)...), 16000, "tone 900"},
		{"silence is empty", make([]int16, 16000), 16000, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DescribeTone(tt.pcm, tt.rate); got != tt.want {
				t.Errorf("DescribeTone = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTranscriptionsValidatesTheDocumentedMultipartForm(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	good := string(wav(sine(500, 300, 16000), 16000))
	tests := []struct {
		name       string
		auth       string
		fields     []field
		wantStatus int
		wantBody   string
	}{
		{"a WAV file with a model is transcribed as json", "Bearer test-key",
			[]field{{"file", "a.wav", good}, {"model", "", "whisper-1"}, {"response_format", "", "json"}}, 200, `"text":"tone 500"`},
		{"response_format text answers plain text", "Bearer test-key",
			[]field{{"file", "a.wav", good}, {"model", "", "whisper-1"}, {"response_format", "", "text"}}, 200, "tone 500\n"},
		{"a wrong key is refused", "Bearer nope",
			[]field{{"file", "a.wav", good}, {"model", "", "whisper-1"}}, 401, "Incorrect API key"},
		{"a missing model is refused", "Bearer test-key",
			[]field{{"file", "a.wav", good}}, 400, "model"},
		{"a missing file is refused", "Bearer test-key",
			[]field{{"model", "", "whisper-1"}}, 400, "file"},
		{"a file field without a filename is refused", "Bearer test-key",
			[]field{{"file", "", good}, {"model", "", "whisper-1"}}, 400, "filename"},
		{"an unknown field is refused", "Bearer test-key",
			[]field{{"file", "a.wav", good}, {"model", "", "whisper-1"}, {"voice", "", "x"}}, 400, "Unrecognized request argument"},
		{"a file that is not WAV is refused", "Bearer test-key",
			[]field{{"file", "a.wav", "ID3 not a wav"}, {"model", "", "whisper-1"}}, 400, "Invalid file format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct, body := multipartBody(t, tt.fields)
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/audio/transcriptions", bytes.NewReader(body))
			req.Header.Set("Content-Type", ct)
			req.Header.Set("Authorization", tt.auth)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(string(got), tt.wantBody) {
				t.Errorf("got %d %s, want %d containing %q", resp.StatusCode, got, tt.wantStatus, tt.wantBody)
			}
			if resp.StatusCode != 200 && !strings.Contains(string(got), `"error":{`) {
				t.Errorf("error body %s is not in the OpenAI error envelope", got)
			}
		})
	}
	if n := len(s.Transcriptions()); n != 2 {
		t.Errorf("recorded %d accepted requests, want 2", n)
	}
}

func TestScriptedFailuresCarryRetryAfter(t *testing.T) {
	s := New(Options{Fail: func(n int) (int, string) {
		if n == 0 {
			return 429, "2"
		}
		return 0, ""
	}})
	defer s.Close()
	post := func() *http.Response {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/audio/speech", strings.NewReader(`{"model":"tts-1","input":"hi","voice":"alloy","response_format":"pcm"}`))
		req.Header.Set("Authorization", "Bearer test-key")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := post(); r.StatusCode != 429 || r.Header.Get("Retry-After") != "2" {
		t.Errorf("first: %d Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if r := post(); r.StatusCode != 200 {
		t.Errorf("second: %d", r.StatusCode)
	}
}

func TestSpeechAnswersPCMAt24kHzAndRefusesBadBodies(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantBytes  int
	}{
		{"pcm is 60 ms of 24 kHz audio per character", `{"model":"gpt-4o-mini-tts","input":"hello","voice":"alloy","response_format":"pcm"}`, 200, 5 * 1440 * 2},
		{"a missing voice is refused", `{"model":"gpt-4o-mini-tts","input":"hello"}`, 400, 0},
		{"empty input is refused", `{"model":"gpt-4o-mini-tts","input":"","voice":"alloy"}`, 400, 0},
		{"an unknown field is refused", `{"model":"m","input":"x","voice":"alloy","pitch":2}`, 400, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/audio/speech", strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer test-key")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || (tt.wantStatus == 200 && len(got) != tt.wantBytes) {
				t.Errorf("got %d with %d bytes, want %d with %d", resp.StatusCode, len(got), tt.wantStatus, tt.wantBytes)
			}
		})
	}
}

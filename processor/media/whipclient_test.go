package media

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// whipEndpoint serves WHIP over HTTP in front of a WHIP, like the processor's
// POST /whip and DELETE /whip/{session}, with one handler per session.
type whipEndpoint struct {
	srv    *httptest.Server
	w      *WHIP
	posts  atomic.Int32
	newFor func() WHIPHandler
}

func newWHIPEndpoint(t *testing.T, token string, handler func() WHIPHandler) *whipEndpoint {
	t.Helper()
	w, err := NewWHIP(WebRTCConfig{LoopbackOnly: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &whipEndpoint{w: w, newFor: handler}
	mux := http.NewServeMux()
	authorized := func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer "+token }
	mux.HandleFunc("POST /whip", func(rw http.ResponseWriter, r *http.Request) {
		e.posts.Add(1)
		if !authorized(r) {
			http.Error(rw, "bad token", http.StatusUnauthorized)
			return
		}
		if r.Header.Get("Content-Type") != "application/sdp" {
			http.Error(rw, "want application/sdp", http.StatusUnsupportedMediaType)
			return
		}
		offer, _ := io.ReadAll(r.Body)
		answer, id, err := w.Offer(r.Context(), string(offer), e.newFor(), nil)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		rw.Header().Set("Content-Type", "application/sdp")
		rw.Header().Set("Location", "/whip/"+id)
		rw.WriteHeader(http.StatusCreated)
		io.WriteString(rw, answer)
	})
	mux.HandleFunc("DELETE /whip/{id}", func(rw http.ResponseWriter, r *http.Request) {
		if !authorized(r) {
			http.Error(rw, "bad token", http.StatusUnauthorized)
			return
		}
		if err := w.Delete(r.PathValue("id")); err != nil {
			http.Error(rw, err.Error(), http.StatusNotFound)
		}
	})
	e.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		e.srv.Close()
		if err := w.Close(); err != nil {
			t.Errorf("WHIP Close: %v", err)
		}
	})
	return e
}

// decodeAll is what a receiver that lost nothing hands to OnAudio.
func decodeAll(t *testing.T, pkts [][]byte) []int16 {
	t.Helper()
	dec, err := NewOpusDecoder()
	if err != nil {
		t.Fatal(err)
	}
	var pcm []int16
	for _, p := range pkts {
		out, err := dec.Decode(p)
		if err != nil {
			t.Fatal(err)
		}
		pcm = append(pcm, out...)
	}
	return pcm
}

func TestPublishOggDeliversEveryPacketToTheWHIPServer(t *testing.T) {
	ogg := oggFixture(t) // ffmpeg's default pages: about a second of packets each
	want := decodeAll(t, oggPackets(t, onePacketPerPageOgg(t)))
	for _, tt := range []struct {
		name     string
		realtime bool
	}{
		{"a real-time publish arrives sample for sample", true},
		{"a fast publish arrives sample for sample", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sink := newPCMSink()
			e := newWHIPEndpoint(t, "tok", func() WHIPHandler { return sink })
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := PublishOgg(ctx, e.srv.URL+"/whip", "tok", bytes.NewReader(ogg), tt.realtime); err != nil {
				t.Fatalf("PublishOgg: %v", err)
			}
			// The DELETE has closed the session: OnClosed came after the last OnAudio.
			sink.waitClosed(t, time.Second)
			got := sink.samples()
			if !slices.Equal(got, want) {
				first := -1
				for i := range min(len(got), len(want)) {
					if got[i] != want[i] {
						first = i
						break
					}
				}
				t.Fatalf("received %d samples, want the %d a lossless decode gives (first difference at %d)", len(got), len(want), first)
			}
		})
	}
}

func TestPublishOggReportsWhatWentWrong(t *testing.T) {
	ogg := oggFixture(t)
	tests := []struct {
		name      string
		token     string
		ogg       []byte
		wantPosts int32
		wantErr   string
	}{
		{"a refused token is reported with the server's status", "wrong", ogg, 1, "401"},
		{"a file that is not Ogg fails before any offer", "tok", []byte("RIFF....WAVEfmt "), 0, "not an Ogg page"},
		{"a truncated Ogg file fails before any offer", "tok", ogg[:len(ogg)/2], 0, "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newWHIPEndpoint(t, "tok", func() WHIPHandler { return newPCMSink() })
			err := PublishOgg(context.Background(), e.srv.URL+"/whip", tt.token, bytes.NewReader(tt.ogg), false)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("PublishOgg = %v, want an error mentioning %q", err, tt.wantErr)
			}
			if n := e.posts.Load(); n != tt.wantPosts {
				t.Errorf("%d offers posted, want %d", n, tt.wantPosts)
			}
		})
	}
	t.Run("a cancelled publish still ends its session", func(t *testing.T) {
		sink := newPCMSink()
		e := newWHIPEndpoint(t, "tok", func() WHIPHandler { return sink })
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			for len(sink.samples()) == 0 {
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
		}()
		err := PublishOgg(ctx, e.srv.URL+"/whip", "tok", bytes.NewReader(ogg), true)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("PublishOgg = %v, want context.Canceled", err)
		}
		sink.waitClosed(t, time.Second)
	})
}

func TestReadOggOpusJoinsPacketsAcrossPageLayouts(t *testing.T) {
	want := oggPackets(t, onePacketPerPageOgg(t)) // read by pion's oggreader
	for _, tt := range []struct {
		name string
		ogg  []byte
	}{
		{"one packet per page", onePacketPerPageOgg(t)},
		{"a second of packets per page", oggFixture(t)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readOggOpus(bytes.NewReader(tt.ogg))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d packets, want %d", len(got), len(want))
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("packet %d differs", i)
				}
			}
		})
	}
}

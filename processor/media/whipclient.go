package media

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// The publishing side of WHIP, for tools that play a recording to a processor
// the way a candidate's browser would (candor eval-stt --transport whip).

const (
	// publishConnectTimeout bounds ICE and DTLS after the answer.
	publishConnectTimeout = 20 * time.Second
	// publishDrainTimeout bounds the wait, after the last packet, for the
	// receiver's RTCP report that it has read that packet. pion sends
	// receiver reports every second, so this is ample.
	publishDrainTimeout = 4 * time.Second
	// fastPacketGap paces a publish that is not real time: one 20 ms packet
	// every 2 ms (10x). A pure burst is not what WebRTC looks like, and it
	// can overrun the receiver's socket buffer; lost packets would become
	// silence on the other side and pollute a measurement.
	fastPacketGap = 2 * time.Millisecond
	// maxWHIPAnswer bounds the SDP answer read from the server.
	maxWHIPAnswer = 64 << 10
)

// PublishOgg sends the Opus audio of an Ogg/Opus recording to a WHIP endpoint
// (RFC 9725) as a browser would: it POSTs an SDP offer with every candidate
// (no trickle) and Authorization: Bearer token (none if token is ""), expects
// 201 with an SDP answer and a Location, connects, sends one RTP packet per
// Opus packet with RTP timestamps following the recording, and finally
// DELETEs the Location (also when sending fails after the session was
// created).
//
// With realtime, packets leave at the recording's own pace; otherwise ten
// times faster. Either way the receiver sees the same stream time. Before the
// DELETE, PublishOgg waits (at most a few seconds) until the receiver's RTCP
// receiver report says it has read the last packet, so the end of the
// recording is not cut off by the session closing.
//
// When whipURL's host is a loopback address (or "localhost"), only loopback
// ICE candidates are gathered and mDNS is off: a publisher on the same host
// as the processor, as in tests and evaluations. ICE servers announced by the
// server (Link headers) are not used.
//
// The whole recording is read before the offer is sent, so a malformed file
// fails without creating a session.
func PublishOgg(ctx context.Context, whipURL, token string, ogg io.Reader, realtime bool) error {
	u, err := url.Parse(whipURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("media: whip publish: endpoint %q is not an http(s) URL", whipURL)
	}
	pkts, err := readOggOpus(ogg)
	if err != nil {
		return fmt.Errorf("media: whip publish: %w", err)
	}

	pc, track, sender, err := newPublisher(isLoopbackHost(u.Hostname()))
	if err != nil {
		return fmt.Errorf("media: whip publish: %w", err)
	}
	defer pc.Close()
	params := sender.GetParameters()
	if len(params.Encodings) == 0 {
		return errors.New("media: whip publish: audio sender has no encoding")
	}
	reports := watchReports(sender, uint32(params.Encodings[0].SSRC))
	defer func() {
		_ = pc.Close() // ends the report reader
		<-reports.done
	}()

	connected := make(chan struct{})
	failed := make(chan struct{})
	var connOnce, failOnce sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			connOnce.Do(func() { close(connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			failOnce.Do(func() { close(failed) })
		}
	})

	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("media: whip publish: create offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("media: whip publish: set local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fmt.Errorf("media: whip publish: gathering candidates: %w", ctx.Err())
	}

	answer, location, err := postOffer(ctx, u, token, pc.LocalDescription().SDP)
	if err != nil {
		return fmt.Errorf("media: whip publish: %w", err)
	}
	sendErr := func() error {
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
			return fmt.Errorf("set answer: %w", err)
		}
		t := time.NewTimer(publishConnectTimeout)
		defer t.Stop()
		select {
		case <-connected:
		case <-failed:
			return fmt.Errorf("peer connection %s before connecting", pc.ConnectionState())
		case <-t.C:
			return fmt.Errorf("not connected within %v (ICE state %s)", publishConnectTimeout, pc.ICEConnectionState())
		case <-ctx.Done():
			return ctx.Err()
		}
		return sendPackets(ctx, track, reports, pkts, realtime)
	}()
	// The session exists on the server from the 201 on: end it whatever
	// happened, even when ctx is already cancelled.
	delCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	delErr := deleteSession(delCtx, location, token)
	if sendErr != nil {
		return fmt.Errorf("media: whip publish: %w", errors.Join(sendErr, delErr))
	}
	if delErr != nil {
		return fmt.Errorf("media: whip publish: %w", delErr)
	}
	return nil
}

// newPublisher builds a peer connection with one send-only Opus track,
// negotiated like the WHIP server's (payload type 111, 48 kHz, FEC), and
// returns the track's sender, whose RTCP carries the receiver's reports.
func newPublisher(loopback bool) (*webrtc.PeerConnection, *webrtc.TrackLocalStaticRTP, *webrtc.RTPSender, error) {
	codec := webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1",
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: codec, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, nil, nil, fmt.Errorf("register opus: %w", err)
	}
	se := webrtc.SettingEngine{}
	if loopback {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4})
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("new peer connection: %w", err)
	}
	track, err := webrtc.NewTrackLocalStaticRTP(codec, "audio", "candidate")
	if err != nil {
		pc.Close()
		return nil, nil, nil, fmt.Errorf("new track: %w", err)
	}
	tr, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		pc.Close()
		return nil, nil, nil, fmt.Errorf("add track: %w", err)
	}
	return pc, track, tr.Sender(), nil
}

// sendPackets writes pkts as RTP, paced, then waits until the receiver
// reports the last one. pc must be connected.
func sendPackets(ctx context.Context, track *webrtc.TrackLocalStaticRTP, reports *reportWatcher, pkts [][]byte, realtime bool) error {
	var r [6]byte
	_, _ = rand.Read(r[:])
	firstSeq := binary.BigEndian.Uint16(r[:2])
	ts := binary.BigEndian.Uint32(r[2:])

	start := time.Now()
	var due time.Duration // when the next packet leaves, from start
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i, payload := range pkts {
		if wait := time.Until(start.Add(due)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		n, err := opusPacketSamples(payload)
		if err != nil {
			n = SampleRate / 50
		}
		if err := track.WriteRTP(&rtp.Packet{
			Header:  rtp.Header{Version: 2, Marker: i == 0, SequenceNumber: firstSeq + uint16(i), Timestamp: ts},
			Payload: payload,
		}); err != nil {
			return fmt.Errorf("send packet %d: %w", i, err)
		}
		ts += uint32(n * 3) // 48 kHz RTP clock
		if realtime {
			due += time.Duration(n) * time.Second / SampleRate
		} else {
			due += fastPacketGap
		}
	}
	if len(pkts) == 0 {
		return nil
	}
	// Receiver reports carry the extended highest sequence number read.
	last := int64(firstSeq) + int64(len(pkts)) - 1
	drain := time.NewTimer(publishDrainTimeout)
	defer drain.Stop()
	for reports.highest.Load() < last {
		select {
		case <-reports.got:
		case <-drain.C:
			return nil // a receiver without RTCP reports: end anyway
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// reportWatcher follows the receiver reports about one outgoing SSRC.
type reportWatcher struct {
	highest atomic.Int64  // extended highest sequence number reported; -1 before any
	got     chan struct{} // a report arrived (capacity 1, never blocks the reader)
	done    chan struct{} // closed when the reader has stopped
}

// watchReports reads sender's RTCP until the peer connection closes; the
// caller closes it and then waits on done.
func watchReports(sender *webrtc.RTPSender, ssrc uint32) *reportWatcher {
	w := &reportWatcher{got: make(chan struct{}, 1), done: make(chan struct{})}
	w.highest.Store(-1)
	go func() {
		defer close(w.done)
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				rr, ok := p.(*rtcp.ReceiverReport)
				if !ok {
					continue
				}
				for _, rep := range rr.Reports {
					if rep.SSRC == ssrc && int64(rep.LastSequenceNumber) > w.highest.Load() {
						w.highest.Store(int64(rep.LastSequenceNumber))
					}
				}
				select {
				case w.got <- struct{}{}:
				default:
				}
			}
		}
	}()
	return w
}

// postOffer does the WHIP POST and returns the answer and the session URL.
func postOffer(ctx context.Context, endpoint *url.URL, token, offer string) (answer string, location *url.URL, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.String(), strings.NewReader(offer))
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Content-Type", "application/sdp")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil, fmt.Errorf("POST offer: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxWHIPAnswer))
	if err != nil {
		return "", nil, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return "", nil, fmt.Errorf("POST offer: %s: %s", resp.Status, strings.TrimSpace(string(body[:min(len(body), 300)])))
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", nil, errors.New("201 without a Location")
	}
	locURL, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "", nil, fmt.Errorf("Location %q: %w", loc, err)
	}
	return string(body), locURL, nil
}

func deleteSession(ctx context.Context, location *url.URL, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, location.String(), nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("DELETE session: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("DELETE session: %s", resp.Status)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readOggOpus returns the audio packets of the first logical stream of an
// Ogg/Opus file (RFC 7845): its OpusHead and OpusTags packets are checked and
// dropped, and packets continued across pages are joined.
func readOggOpus(r io.Reader) ([][]byte, error) {
	var (
		pkts    [][]byte
		partial []byte
		serial  uint32
		started bool
		seen    int // packets of the stream, headers included
		hdr     [oggHeaderLen]byte
		lacing  [255]byte
	)
	for page := 0; ; page++ {
		n, err := io.ReadFull(r, hdr[:])
		if !bytes.HasPrefix([]byte("OggS"), hdr[:min(n, 4)]) || (n >= 5 && hdr[4] != 0) {
			return nil, fmt.Errorf("ogg page %d: not an Ogg page", page)
		}
		if err != nil {
			if errors.Is(err, io.EOF) && page > 0 {
				break
			}
			return nil, fmt.Errorf("ogg page %d: %w", page, err)
		}
		nseg := int(hdr[26])
		if _, err := io.ReadFull(r, lacing[:nseg]); err != nil {
			return nil, fmt.Errorf("ogg page %d: %w", page, err)
		}
		bodyLen := 0
		for _, l := range lacing[:nseg] {
			bodyLen += int(l)
		}
		body := make([]byte, bodyLen)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, fmt.Errorf("ogg page %d: %w", page, err)
		}
		crc := oggCRC(0, hdr[:22])
		crc = oggCRC(crc, []byte{0, 0, 0, 0})
		crc = oggCRC(crc, hdr[26:])
		crc = oggCRC(crc, lacing[:nseg])
		crc = oggCRC(crc, body)
		if crc != binary.LittleEndian.Uint32(hdr[22:26]) {
			return nil, fmt.Errorf("ogg page %d: checksum mismatch", page)
		}
		s := binary.LittleEndian.Uint32(hdr[14:18])
		if !started {
			if hdr[5]&0x02 == 0 {
				return nil, errors.New("ogg: stream does not start with a BOS page")
			}
			started, serial = true, s
		}
		if s != serial {
			continue
		}
		off := 0
		for _, l := range lacing[:nseg] {
			partial = append(partial, body[off:off+int(l)]...)
			off += int(l)
			if len(partial) > maxOggPacket {
				return nil, errors.New("ogg: packet too large")
			}
			if l == 255 {
				continue
			}
			seen++
			switch seen {
			case 1:
				if _, err := parseOpusHead(partial); err != nil {
					return nil, fmt.Errorf("ogg: %w", err)
				}
			case 2:
				if len(partial) < 8 || string(partial[:8]) != "OpusTags" {
					return nil, errors.New("ogg: missing OpusTags")
				}
			default:
				if len(partial) > 0 {
					pkts = append(pkts, partial)
				}
			}
			partial = nil
		}
	}
	if len(partial) > 0 {
		return nil, errors.New("ogg: recording ends inside a packet")
	}
	if seen < 2 {
		return nil, errors.New("ogg: no Opus headers")
	}
	return pkts, nil
}

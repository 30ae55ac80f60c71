package media

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

// WebRTCConfig configures the processor's WebRTC endpoint.
type WebRTCConfig struct {
	ICEServers []webrtc.ICEServer
	UDPMuxPort int // >0: every session shares this one UDP port
	// UDPBindHost is the host the UDP mux port binds (default: every
	// address; on Fly "fly-global-services", the only address Fly delivers
	// UDP to, resolved when the port is opened). Behind it the processor
	// is reachable only through the proxy's address, so it answers the
	// browser's checks (peer-reflexive) instead of probing the offer's
	// candidates itself: every path it uses goes through the published
	// port.
	UDPBindHost string
	ICETCPPort  int      // >0: also accept ICE over TCP on this port
	PublicIPs   []string // advertised instead of the host's own addresses (1:1 NAT, e.g. a Fly machine)

	// Additions to the team contract:

	// LoopbackOnly gathers only 127.0.0.1 candidates and turns mDNS off: for
	// tests and for a processor on the same host as the browser.
	LoopbackOnly bool
	// ConnectTimeout closes a session that has not connected this long after
	// its answer (default 30 s).
	ConnectTimeout time.Duration
	// ICEDisconnectedTimeout and ICEFailedTimeout override pion's defaults
	// (5 s and 25 s): a session whose ICE fails is closed.
	ICEDisconnectedTimeout, ICEFailedTimeout time.Duration
}

// WHIPHandler receives one session's audio and its end. OnAudio is called
// from one goroutine, in stream order, with 16 kHz mono PCM whose sample count
// follows RTP time: lost packets and DTX pauses arrive as silence. For every
// session Offer returned, OnClosed is called exactly once, after the last
// OnAudio, whatever ended the session (Delete, Close, ICE failure, or no
// connection within ConnectTimeout). Neither may block for long: OnAudio holds
// up RTP reading, OnClosed holds up Delete and Close.
type WHIPHandler interface {
	OnAudio(pcm []int16)
	OnClosed()
}

var (
	// ErrBadOffer wraps every error caused by the offer itself (the web layer
	// answers 400).
	ErrBadOffer = errors.New("invalid SDP offer")
	// ErrSessionNotFound is returned for an unknown or ended session id.
	ErrSessionNotFound = errors.New("whip session not found")
	// ErrSendBufferFull is returned when the data channel is not draining.
	ErrSendBufferFull = errors.New("interviewer data channel buffer full")
)

const (
	interviewerChannel = "interviewer"
	// maxDCMessage is the size binary PCM is split into on the data channel:
	// every message holds whole samples and stays far below any browser's
	// SCTP max-message-size.
	maxDCMessage = 16 << 10
	maxDCPending = 8 << 20
	// maxSilence caps the silence one timestamp jump can insert, so a bogus
	// timestamp cannot allocate without bound.
	maxSilence = 30 * SampleRate
)

// WHIP accepts WHIP sessions (RFC 9725) carrying the candidate's Opus audio,
// and sends the interviewer's messages back on the page's "interviewer" data
// channel.
type WHIP struct {
	cfg WebRTCConfig
	api *webrtc.API
	log *slog.Logger

	udpConn net.PacketConn
	udpMux  ice.UDPMux
	tcpLn   net.Listener
	tcpMux  ice.TCPMux

	mu       sync.Mutex
	sessions map[string]*whipSession
	closed   bool
	wg       sync.WaitGroup // session watchers and self-closes
}

// NewWHIP builds the WebRTC API once; the muxed ports (if any) are bound here
// and released by Close.
func NewWHIP(cfg WebRTCConfig, log *slog.Logger) (*WHIP, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	w := &WHIP{cfg: cfg, log: log, sessions: map[string]*whipSession{}}

	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1",
		},
		PayloadType: 111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("media: whip: register opus: %w", err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, fmt.Errorf("media: whip: interceptors: %w", err)
	}

	se := webrtc.SettingEngine{}
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	bindIP := net.IP(nil)
	if cfg.LoopbackOnly {
		bindIP = net.IPv4(127, 0, 0, 1)
		networks = []webrtc.NetworkType{webrtc.NetworkTypeUDP4}
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	}
	if cfg.ICEDisconnectedTimeout > 0 || cfg.ICEFailedTimeout > 0 {
		d, f := cfg.ICEDisconnectedTimeout, cfg.ICEFailedTimeout
		if d <= 0 {
			d = 5 * time.Second
		}
		if f <= 0 {
			f = 25 * time.Second
		}
		se.SetICETimeouts(d, f, 2*time.Second)
	}
	if len(cfg.PublicIPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        cfg.PublicIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
		}); err != nil {
			return nil, fmt.Errorf("media: whip: public IPs %v: %w", cfg.PublicIPs, err)
		}
	}
	if cfg.UDPMuxPort > 0 {
		udpAddr := &net.UDPAddr{IP: bindIP, Port: cfg.UDPMuxPort}
		if cfg.UDPBindHost != "" {
			a, err := net.ResolveUDPAddr("udp", net.JoinHostPort(cfg.UDPBindHost, strconv.Itoa(cfg.UDPMuxPort)))
			if err != nil {
				return nil, fmt.Errorf("media: whip: UDP bind host %q: %w", cfg.UDPBindHost, err)
			}
			udpAddr = a
			if a.IP.IsLoopback() {
				// A loopback stand-in for fly-global-services (tests):
				// its candidates are the ones to offer.
				se.SetIncludeLoopbackCandidate(true)
			}
		}
		conn, err := net.ListenUDP("udp", udpAddr)
		if err != nil {
			return nil, fmt.Errorf("media: whip: UDP mux port %d: %w", cfg.UDPMuxPort, err)
		}
		w.udpConn = conn
		w.udpMux = webrtc.NewICEUDPMux(nil, conn)
		se.SetICEUDPMux(w.udpMux)
	}
	if cfg.ICETCPPort > 0 {
		ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: bindIP, Port: cfg.ICETCPPort})
		if err != nil {
			w.closeMuxes()
			return nil, fmt.Errorf("media: whip: ICE-TCP port %d: %w", cfg.ICETCPPort, err)
		}
		w.tcpLn = ln
		w.tcpMux = webrtc.NewICETCPMux(nil, ln, 8)
		se.SetICETCPMux(w.tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4)
		if !cfg.LoopbackOnly {
			networks = append(networks, webrtc.NetworkTypeTCP6)
		}
	}
	se.SetNetworkTypes(networks)

	w.api = webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	return w, nil
}

type dcMessage struct {
	text bool
	data []byte
}

type whipSession struct {
	id  string
	pc  *webrtc.PeerConnection
	h   WHIPHandler
	rec io.Writer

	mu         sync.Mutex
	closing    bool
	audioTaken bool
	dc         *webrtc.DataChannel
	dcOpen     bool
	pending    []dcMessage
	pendingLen int

	tracks    sync.WaitGroup // OnTrack handlers (pion's goroutines; ended by pc.Close)
	connected chan struct{}
	connOnce  sync.Once
	closeOnce sync.Once
	done      chan struct{} // closed once the session is fully closed
}

// Offer answers a WHIP offer. It waits for ICE gathering to complete so the
// answer carries every candidate (no trickle). rec, if not nil, receives the
// received Opus as an Ogg/Opus file; it is not closed. An offer that cannot be
// applied returns an error wrapping ErrBadOffer and leaves nothing behind.
func (w *WHIP) Offer(ctx context.Context, offerSDP string, h WHIPHandler, rec io.Writer) (answerSDP, sessionID string, err error) {
	if h == nil {
		return "", "", errors.New("media: whip: nil handler")
	}
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return "", "", errors.New("media: whip: closed")
	}

	pc, err := w.api.NewPeerConnection(webrtc.Configuration{ICEServers: w.cfg.ICEServers})
	if err != nil {
		return "", "", fmt.Errorf("media: whip: new peer connection: %w", err)
	}
	s := &whipSession{
		id: newSessionID(), pc: pc, h: h, rec: rec,
		connected: make(chan struct{}), done: make(chan struct{}),
	}
	fail := func(err error) (string, string, error) {
		_ = pc.Close()
		return "", "", err
	}

	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		return fail(fmt.Errorf("media: whip: audio transceiver: %w", err))
	}
	pc.OnTrack(s.onTrack)
	pc.OnDataChannel(s.onDataChannel)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			s.connOnce.Do(func() { close(s.connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			// Disconnected is left alone: ICE may recover, and pion moves
			// to Failed once ICEFailedTimeout has passed without it.
			w.closeAsync(s, "peer connection "+st.String())
		}
	})

	if w.cfg.UDPBindHost != "" {
		offerSDP = withoutCandidates(offerSDP)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}); err != nil {
		return fail(fmt.Errorf("media: whip: %w: %w", ErrBadOffer, err))
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(fmt.Errorf("media: whip: %w: create answer: %w", ErrBadOffer, err))
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(fmt.Errorf("media: whip: set local description: %w", err))
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail(fmt.Errorf("media: whip: gathering candidates: %w", ctx.Err()))
	}

	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return fail(errors.New("media: whip: closed"))
	}
	w.sessions[s.id] = s
	w.wg.Add(1)
	w.mu.Unlock()
	go w.watch(s)

	return pc.LocalDescription().SDP, s.id, nil
}

// watch closes a session that does not connect within ConnectTimeout.
func (w *WHIP) watch(s *whipSession) {
	defer w.wg.Done()
	t := time.NewTimer(w.cfg.ConnectTimeout)
	defer t.Stop()
	select {
	case <-s.connected:
	case <-s.done:
	case <-t.C:
		w.closeSession(s, "no connection within "+w.cfg.ConnectTimeout.String())
	}
}

// closeAsync closes s from inside a pion callback, where closing the peer
// connection synchronously could deadlock.
func (w *WHIP) closeAsync(s *whipSession, reason string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sessions[s.id] != s {
		return // not yet registered (Offer's fail path closes it) or already gone
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.closeSession(s, reason)
	}()
}

// closeSession closes s once and waits until it has fully stopped.
func (w *WHIP) closeSession(s *whipSession, reason string) {
	s.closeOnce.Do(func() {
		w.mu.Lock()
		if w.sessions[s.id] == s {
			delete(w.sessions, s.id)
		}
		w.mu.Unlock()

		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		err := s.pc.Close()
		s.tracks.Wait()
		s.h.OnClosed()
		w.log.Info("whip session closed", "session", s.id, "reason", reason, "close_error", err)
		close(s.done)
	})
	<-s.done
}

// Delete ends one session.
func (w *WHIP) Delete(sessionID string) error {
	w.mu.Lock()
	s, ok := w.sessions[sessionID]
	w.mu.Unlock()
	if !ok {
		return ErrSessionNotFound
	}
	w.closeSession(s, "deleted")
	return nil
}

// Close ends every session, waits for their goroutines and releases the
// muxed ports. Offers after Close fail.
func (w *WHIP) Close() error {
	w.mu.Lock()
	w.closed = true
	all := make([]*whipSession, 0, len(w.sessions))
	for _, s := range w.sessions {
		all = append(all, s)
	}
	w.mu.Unlock()
	for _, s := range all {
		w.closeSession(s, "shutdown")
	}
	w.wg.Wait()
	return w.closeMuxes()
}

func (w *WHIP) closeMuxes() error {
	var errs []error
	if w.udpMux != nil {
		errs = append(errs, w.udpMux.Close())
	}
	if w.udpConn != nil {
		if err := w.udpConn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if w.tcpMux != nil {
		errs = append(errs, w.tcpMux.Close())
	}
	if w.tcpLn != nil {
		if err := w.tcpLn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Send writes to the session's "interviewer" data channel: text as one text
// message, binary (PCM) as binary messages of at most 16 KiB, each a whole
// number of samples. Before the page's channel opens, messages are buffered
// (up to 8 MiB).
func (w *WHIP) Send(sessionID string, text []byte, binary []byte) error {
	w.mu.Lock()
	s, ok := w.sessions[sessionID]
	w.mu.Unlock()
	if !ok {
		return ErrSessionNotFound
	}
	var msgs []dcMessage
	if text != nil {
		msgs = append(msgs, dcMessage{text: true, data: append([]byte(nil), text...)})
	}
	for len(binary) > 0 {
		n := min(len(binary), maxDCMessage)
		msgs = append(msgs, dcMessage{data: append([]byte(nil), binary[:n]...)})
		binary = binary[n:]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return ErrSessionNotFound
	}
	if !s.dcOpen {
		for _, m := range msgs {
			if s.pendingLen+len(m.data) > maxDCPending {
				return ErrSendBufferFull
			}
			s.pending = append(s.pending, m)
			s.pendingLen += len(m.data)
		}
		return nil
	}
	if s.dc.BufferedAmount() > maxDCPending {
		return ErrSendBufferFull
	}
	for _, m := range msgs {
		if err := sendDC(s.dc, m); err != nil {
			return fmt.Errorf("media: whip: send: %w", err)
		}
	}
	return nil
}

func sendDC(dc *webrtc.DataChannel, m dcMessage) error {
	if m.text {
		return dc.SendText(string(m.data))
	}
	return dc.Send(m.data)
}

func (s *whipSession) onDataChannel(dc *webrtc.DataChannel) {
	if dc.Label() != interviewerChannel {
		return
	}
	s.mu.Lock()
	s.dc = dc
	s.mu.Unlock()
	dc.OnOpen(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.dc != dc {
			return
		}
		s.dcOpen = true
		for _, m := range s.pending {
			if err := sendDC(dc, m); err != nil {
				break // the channel is going away; the session closes with it
			}
		}
		s.pending, s.pendingLen = nil, 0
	})
}

// onTrack runs on pion's goroutine for the track; it returns when the peer
// connection closes. Only the first audio track is decoded and recorded.
func (s *whipSession) onTrack(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.tracks.Add(1)
	defer s.tracks.Done()
	first := !s.audioTaken && track.Kind() == webrtc.RTPCodecTypeAudio
	s.audioTaken = s.audioTaken || first
	s.mu.Unlock()
	if !first {
		drain(track)
		return
	}

	var rec *oggwriter.Track
	var recW *oggwriter.Writer
	if s.rec != nil {
		var err error
		recW, err = oggwriter.NewWriter(writerOnly{s.rec},
			oggwriter.WithSampleRate(48000), oggwriter.WithChannelCount(1))
		if err == nil {
			rec, err = recW.NewTrack(uint32(track.SSRC()))
		}
		if err != nil {
			rec = nil
		}
	}
	defer func() {
		if recW != nil {
			_ = recW.Close() // writes the EOS page; writerOnly keeps s.rec open
		}
	}()

	dec, err := NewOpusDecoder()
	if err != nil {
		return
	}
	clock := rtpClock{}
	for {
		pkt, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		if rec != nil {
			if err := rec.WriteRTP(pkt); err != nil {
				rec = nil // a failing recording must not stop the interview
			}
		}
		clock.packet(pkt, dec, s.h.OnAudio)
	}
}

// rtpClock turns Opus RTP packets into PCM whose length follows RTP time.
type rtpClock struct {
	started bool
	lastSeq uint16
	nextTS  uint32 // RTP timestamp (48 kHz) where the next packet should start
}

func (c *rtpClock) packet(pkt *rtp.Packet, dec *OpusDecoder, out func([]int16)) {
	if len(pkt.Payload) == 0 {
		return
	}
	if c.started {
		if int16(pkt.SequenceNumber-c.lastSeq) <= 0 {
			return // duplicate, or too late: its time has already been filled
		}
		if gap := int32(pkt.Timestamp - c.nextTS); gap > 0 {
			out(make([]int16, min(int(gap)/3, maxSilence)))
		}
	}
	pcm, err := dec.Decode(pkt.Payload)
	if err != nil {
		n, perr := opusPacketSamples(pkt.Payload)
		if perr != nil {
			n = SampleRate / 50
		}
		pcm = make([]int16, n)
	}
	c.started = true
	c.lastSeq = pkt.SequenceNumber
	c.nextTS = pkt.Timestamp + uint32(len(pcm)*3)
	out(pcm)
}

func drain(track *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := track.Read(buf); err != nil {
			return
		}
	}
}

// writerOnly hides a Close method: oggwriter closes an io.Closer it is given,
// and the recording belongs to the caller.
type writerOnly struct{ io.Writer }

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// withoutCandidates drops the candidate lines of an SDP: the agent then
// learns the peer's addresses from the checks the peer sends.
func withoutCandidates(sdp string) string {
	lines := strings.SplitAfter(sdp, "\n")
	out := lines[:0]
	for _, l := range lines {
		if !strings.HasPrefix(l, "a=candidate:") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

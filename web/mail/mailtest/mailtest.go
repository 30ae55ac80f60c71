// Package mailtest runs a real SMTP server (emersion/go-smtp) in-process
// for tests: it accepts mail on a loopback port, optionally demanding AUTH
// PLAIN, and keeps every message it received, parsed.
package mailtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one received email.
type Message struct {
	From, To, Subject string
	Text, HTML        string
	Header            mail.Header
}

// Links returns the http(s) URLs in the message's text, in order.
func (m Message) Links() []string {
	return linkRE.FindAllString(m.Text, -1)
}

var linkRE = regexp.MustCompile(`https?://[^\s<>"]+`)

// Server is an SMTP server listening on 127.0.0.1.
type Server struct {
	Addr string // host:port
	srv  *smtp.Server

	user, password string

	mu       sync.Mutex
	messages []Message
	changed  chan struct{}
	auths    int
}

// Start runs a server until the test ends. With user and password set,
// mail is accepted only after AUTH PLAIN with them.
func Start(t testing.TB, user, password string) *Server {
	t.Helper()
	s := &Server{user: user, password: password, changed: make(chan struct{})}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.MaxMessageBytes = 1 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	s.Addr = ln.Addr().String()
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// URL is the smtp:// URL that reaches this server.
func (s *Server) URL() string {
	if s.user == "" {
		return "smtp://" + s.Addr
	}
	return "smtp://" + s.user + ":" + s.password + "@" + s.Addr
}

// Messages returns what was received so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Auths counts successful AUTH exchanges.
func (s *Server) Auths() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auths
}

// Wait returns the first message to `to` whose subject contains subject,
// waiting until one arrives or timeout passes (then the test fails).
func (s *Server) Wait(t testing.TB, to, subject string, timeout time.Duration) Message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		for _, m := range s.messages {
			if strings.EqualFold(m.To, to) && strings.Contains(m.Subject, subject) {
				s.mu.Unlock()
				return m
			}
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("mailtest: no message to %s with subject containing %q within %s; got %d others", to, subject, timeout, len(s.Messages()))
		}
	}
}

func (s *Server) add(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

type session struct {
	s      *Server
	authed bool
	from   string
	to     []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != ss.s.user || password != ss.s.password {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		ss.s.mu.Lock()
		ss.s.auths++
		ss.s.mu.Unlock()
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.user != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	for _, to := range ss.to {
		m, err := parse(raw)
		if err != nil {
			return &smtp.SMTPError{Code: 554, Message: "mailtest: " + err.Error()}
		}
		m.From, m.To = ss.from, to
		ss.s.add(m)
	}
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

// parse reads a message with a text/plain body or a multipart/alternative
// of text and HTML, as Candor sends them.
func parse(raw []byte) (Message, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, err
	}
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return Message{}, fmt.Errorf("subject: %w", err)
	}
	m := Message{Subject: subject, Header: msg.Header}
	err = readPart(&m, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	return m, err
}

func readPart(m *Message, contentType, encoding string, body io.Reader) error {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content type %q: %w", contentType, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := readPart(m, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
				return err
			}
		}
	}
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = newBase64Reader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	switch mt {
	case "text/plain":
		m.Text = string(b)
	case "text/html":
		m.HTML = string(b)
	}
	return nil
}

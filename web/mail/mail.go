// Package mail sends Candor's email through any SMTP server, named by one
// URL: smtp://user:pass@host:port (STARTTLS when the server offers it) or
// smtps://user:pass@host:port (TLS from the first byte). The password never
// leaves this package: String and errors show the URL without it.
package mail

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Message is one email with a plain-text body and an HTML alternative.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// SMTP sends messages through one server. It opens a connection per Send:
// Candor's mail is a trickle, and a long-lived connection would need
// keep-alive and reconnects for nothing.
type SMTP struct {
	host     string
	port     int
	ssl      bool
	user     string
	password string
	from     string
	redacted string
	timeout  time.Duration
}

// New parses rawURL and checks from. The error never contains the password.
func New(rawURL, from string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("not a URL: use smtp://user:pass@host:port or smtps://user:pass@host:port")
	}
	s := &SMTP{host: u.Hostname(), from: from, redacted: u.Redacted(), timeout: 30 * time.Second}
	switch u.Scheme {
	case "smtp":
		s.port = 587
	case "smtps":
		s.port, s.ssl = 465, true
	default:
		return nil, fmt.Errorf("scheme %q: use smtp:// (STARTTLS when offered) or smtps:// (implicit TLS)", u.Scheme)
	}
	if s.host == "" {
		return nil, errors.New("no host: use smtp://user:pass@host:port")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("port %q is not a port number", p)
		}
		s.port = n
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.password, _ = u.User.Password()
	}
	if from == "" {
		return nil, errors.New("no sender: set the From address (e.g. \"Candor <hiring@example.com>\")")
	}
	if err := gomail.NewMsg().From(from); err != nil {
		return nil, fmt.Errorf("sender %q is not an email address", from)
	}
	return s, nil
}

// String is the server's URL without its password, for logs.
func (s *SMTP) String() string { return s.redacted }

// Send delivers m, honouring ctx for the whole exchange.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return fmt.Errorf("mail: sender: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("mail: recipient %q: %w", m.To, err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	opts := []gomail.Option{gomail.WithPort(s.port), gomail.WithTimeout(s.timeout)}
	if s.ssl {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if s.user != "" {
		// The strongest mechanism the server offers. PLAIN and LOGIN send
		// the password as is, so the library allows them only over TLS or
		// to a loopback server.
		opts = append(opts, gomail.WithOpportunisticSMTPAuth(
			gomail.SMTPAuthSCRAMSHA256PLUS, gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1PLUS, gomail.SMTPAuthSCRAMSHA1,
			gomail.SMTPAuthCramMD5, gomail.SMTPAuthPlain, gomail.SMTPAuthLogin),
			gomail.WithUsername(s.user), gomail.WithPassword(s.password))
	}
	c, err := gomail.NewClient(s.host, opts...)
	if err != nil {
		return fmt.Errorf("mail: client for %s: %w", s.redacted, err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("mail: send to %s through %s: %w", m.To, s.redacted, err)
	}
	return nil
}

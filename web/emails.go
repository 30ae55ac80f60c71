package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"

	"candor/web/mail"
)

// mailer sends one email. nil in Config.Mailer means email is off: nothing
// is sent, and the dashboard says how to turn it on.
type mailer interface {
	Send(ctx context.Context, m mail.Message) error
}

var _ mailer = (*mail.SMTP)(nil)

// errMailOff answers requests that need email on a server without it.
var errMailOff = errorf(CodeConflict, "email is not configured on this server: the operator sets CANDOR_SMTP_URL and CANDOR_MAIL_FROM to turn it on")

// mailTimeout bounds one send, so a stuck SMTP server cannot hold a request
// or the reminder loop for long.
const mailTimeout = 30 * time.Second

// emailOn reports whether this server sends email.
func (s *Server) emailOn() bool { return s.cfg.Mailer != nil }

// sendMail renders an email (a text and an HTML template given the same
// data) and sends it.
func (s *Server) sendMail(ctx context.Context, to string, e emailTemplate, data any) error {
	if s.cfg.Mailer == nil {
		return errMailOff
	}
	m, err := e.render(to, data)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, mailTimeout)
	defer cancel()
	return s.cfg.Mailer.Send(ctx, m)
}

// emailTemplate is one kind of email: a subject and a text body (both text
// templates) and an HTML body.
type emailTemplate struct {
	subject, text *texttemplate.Template
	html          *htmltemplate.Template
}

func newEmail(subject, text, html string) emailTemplate {
	funcs := texttemplate.FuncMap{"when": fmtMailTime}
	return emailTemplate{
		subject: texttemplate.Must(texttemplate.New("subject").Funcs(funcs).Parse(subject)),
		text:    texttemplate.Must(texttemplate.New("text").Funcs(funcs).Parse(text)),
		html:    htmltemplate.Must(htmltemplate.New("html").Funcs(htmltemplate.FuncMap{"when": fmtMailTime}).Parse(htmlFrame(html))),
	}
}

func (e emailTemplate) render(to string, data any) (mail.Message, error) {
	var subj, text, html bytes.Buffer
	if err := e.subject.Execute(&subj, data); err != nil {
		return mail.Message{}, fmt.Errorf("render email subject: %w", err)
	}
	if err := e.text.Execute(&text, data); err != nil {
		return mail.Message{}, fmt.Errorf("render email text: %w", err)
	}
	if err := e.html.Execute(&html, data); err != nil {
		return mail.Message{}, fmt.Errorf("render email html: %w", err)
	}
	return mail.Message{To: to, Subject: strings.TrimSpace(subj.String()), Text: text.String(), HTML: html.String()}, nil
}

// fmtMailTime writes a time for an email. The recipient's time zone is
// unknown here, so it is UTC and says so; the pages the links open show
// local time.
func fmtMailTime(t time.Time) string {
	return t.UTC().Format("Monday 2 January 2006, 15:04 UTC")
}

func htmlFrame(body string) string {
	return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"></head>
<body style="margin:0;padding:24px;background:#f6f7f9;font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#1f2933;line-height:1.5">
<div style="max-width:560px;margin:0 auto;background:#ffffff;border-radius:8px;padding:28px">` + body + `
<p style="margin-top:28px;font-size:13px;color:#52606d">Sent by Candor.</p></div></body></html>`
}

const mailButton = `style="display:inline-block;background:#1d4ed8;color:#ffffff;padding:12px 20px;border-radius:6px;text-decoration:none;font-weight:600"`

// invitationData is what interview invitations and reminders show.
type invitationData struct {
	Org, CandidateName, Position string
	From                         *time.Time // nil: open now
	Until                        time.Time
	Link                         string
	Minutes                      int
}

var (
	invitationEmail = newEmail(
		`Your interview for {{.Position}} at {{.Org}}`,
		`Hello {{.CandidateName}},

{{.Org}} invites you to an interview for the position {{.Position}}.
It is a conversation with an AI interviewer in your browser and takes about {{.Minutes}} minutes.

{{if .From}}You can join from {{when .From}}
until {{when .Until}}.{{else}}You can join any time until {{when .Until}}.{{end}}

Join here:
{{.Link}}

Use a computer or phone with a microphone, in a quiet place. The link is personal: do not share it.
`,
		`<p>Hello {{.CandidateName}},</p>
<p><strong>{{.Org}}</strong> invites you to an interview for the position <strong>{{.Position}}</strong>.
It is a conversation with an AI interviewer in your browser and takes about {{.Minutes}} minutes.</p>
<p>{{if .From}}You can join from <strong>{{when .From}}</strong> until <strong>{{when .Until}}</strong>.{{else}}You can join any time until <strong>{{when .Until}}</strong>.{{end}}</p>
<p><a href="{{.Link}}" `+mailButton+`>Join the interview</a></p>
<p style="font-size:14px;color:#52606d">Or open this link: {{.Link}}<br>Use a computer or phone with a microphone, in a quiet place. The link is personal: do not share it.</p>`)

	reminderEmail = newEmail(
		`Reminder: your interview for {{.Position}} closes soon`,
		`Hello {{.CandidateName}},

A reminder that your interview with {{.Org}} for {{.Position}} can be taken until {{when .Until}}.
It takes about {{.Minutes}} minutes.

Join here:
{{.Link}}
`,
		`<p>Hello {{.CandidateName}},</p>
<p>A reminder that your interview with <strong>{{.Org}}</strong> for <strong>{{.Position}}</strong> can be taken until <strong>{{when .Until}}</strong>. It takes about {{.Minutes}} minutes.</p>
<p><a href="{{.Link}}" `+mailButton+`>Join the interview</a></p>
<p style="font-size:14px;color:#52606d">Or open this link: {{.Link}}</p>`)
)

// memberData is what member invitations and password emails show.
type memberData struct {
	Org, Inviter, Name string
	Link               string
	Expires            time.Time
	HasPassword        bool
}

var (
	memberInviteEmail = newEmail(
		`{{.Inviter}} invited you to {{.Org}} on Candor`,
		`Hello {{.Name}},

{{.Inviter}} added you to {{.Org}} on Candor, where the team runs and reviews interviews.

{{if .HasPassword}}Sign in with your Candor email and password:
{{.Link}}
{{else}}Choose your password to sign in:
{{.Link}}

The link works once, until {{when .Expires}}.
{{end}}`,
		`<p>Hello {{.Name}},</p>
<p>{{.Inviter}} added you to <strong>{{.Org}}</strong> on Candor, where the team runs and reviews interviews.</p>
{{if .HasPassword}}<p><a href="{{.Link}}" `+mailButton+`>Sign in</a></p><p style="font-size:14px;color:#52606d">Use your Candor email and password. Or open this link: {{.Link}}</p>
{{else}}<p><a href="{{.Link}}" `+mailButton+`>Choose your password</a></p>
<p style="font-size:14px;color:#52606d">The link works once, until {{when .Expires}}. Or open it here: {{.Link}}</p>{{end}}`)

	resetEmail = newEmail(
		`Reset your Candor password`,
		`Someone (hopefully you) asked to reset the password of this email's Candor account.

Choose a new password here:
{{.Link}}

The link works once, until {{when .Expires}}. If you did not ask for it, ignore this email: your password stays as it is.
`,
		`<p>Someone (hopefully you) asked to reset the password of this email's Candor account.</p>
<p><a href="{{.Link}}" `+mailButton+`>Choose a new password</a></p>
<p style="font-size:14px;color:#52606d">The link works once, until {{when .Expires}}. Or open it here: {{.Link}}<br>If you did not ask for it, ignore this email: your password stays as it is.</p>`)
)

// mailFailure is what a recruiter is told when the mail server refused: the
// cause goes to the log, not to them.
func mailFailure(err error) *Error {
	if errors.Is(err, context.DeadlineExceeded) {
		return errorf(CodeBadGateway, "the mail server did not answer in time; try again later")
	}
	return errorf(CodeBadGateway, "the mail server did not accept the email; the operator can find the cause in the log")
}

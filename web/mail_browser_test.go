package web

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"candor/web/mail/mailtest"
)

// TestBrowserMemberInvitationFromEmail walks the daily path of a new
// teammate in Chromium: the owner invites them on the members page, the
// invitation arrives at a real SMTP server, the link in it opens the
// set-password page, and setting a password lands them signed in to the
// organization with the role they were given. The same link then no longer
// works. Then the forgotten-password path: the reset mail's link sets a new
// password and signs them in.
func TestBrowserMemberInvitationFromEmail(t *testing.T) {
	smtpSrv := mailtest.Start(t, "candor", "smtp-secret")
	env := newDashEnv(t, withSMTP(t, smtpSrv))
	ctx := newDashChrome(t)

	chromeStep(t, ctx, "first-run setup",
		chromedp.Navigate(env.url+"/"),
		chromedp.WaitVisible(byCSS(`[data-testid=setup-form]`)),
		chromedp.SendKeys(byCSS(`#org`), "Northwind Talent"),
		chromedp.SendKeys(byCSS(`#name`), "Olive Owner"),
		chromedp.SendKeys(byCSS(`#email`), "olive@example.com"),
		chromedp.SendKeys(byCSS(`#password`), "correct horse battery"),
		chromedp.Click(byCSS(`[data-testid=setup-submit]`)),
		chromedp.WaitVisible(byCSS(`[data-testid=org-name]`)),
	)
	chromeStep(t, ctx, "invite a recruiter",
		chromedp.Navigate(env.url+"/members"),
		chromedp.WaitVisible(byCSS(`[data-testid=add-member-form]`)),
		chromedp.SendKeys(byCSS(`[data-testid=add-member-form] #name`), "Rae Recruiter"),
		chromedp.SendKeys(byCSS(`[data-testid=add-member-form] #email`), "rae@example.com"),
		chromedp.SetValue(byCSS(`[data-testid=add-member-form] #role`), "recruiter"),
		chromedp.Click(byCSS(`[data-testid=add-member-submit]`)),
		chromedp.WaitVisible(byCSS(`[data-testid=flash]`)),
		chromedp.WaitVisible(byCSS(`[data-testid=member-pending]`)),
	)
	if f := jsEval[string](t, ctx, `document.querySelector("[data-testid=flash]").textContent`); !strings.Contains(f, "emailed them an invitation") {
		t.Errorf("flash after inviting = %q", f)
	}
	saveShot(t, ctx, "members-invited.png")
	jsEval[bool](t, ctx, `document.querySelector("[data-testid=logout]").form.submit(), true`)
	chromeStep(t, ctx, "sign out", chromedp.WaitVisible(byCSS(`[data-testid=login-form]`)))

	m := smtpSrv.Wait(t, "rae@example.com", "invited you to Northwind Talent", mailWait)
	link := onlyLink(t, m, invitationPath)
	chromeStep(t, ctx, "follow the invitation and choose a password",
		chromedp.Navigate(link),
		chromedp.WaitVisible(byCSS(`[data-testid=set-password-form]`)),
		chromedp.SendKeys(byCSS(`#password`), "rae's own password"),
		chromedp.SendKeys(byCSS(`#confirm`), "rae's own password"),
		chromedp.Click(byCSS(`[data-testid=set-password-submit]`)),
		chromedp.WaitVisible(byCSS(`[data-testid=org-name]`)),
	)
	if org := jsEval[string](t, ctx, `document.querySelector("[data-testid=org-name]").textContent`); org != "Northwind Talent" {
		t.Fatalf("signed in to %q, want Northwind Talent", org)
	}
	if role := jsEval[string](t, ctx, `document.querySelector("[data-testid=user-role]").textContent`); !strings.EqualFold(strings.TrimSpace(role), "recruiter") {
		t.Errorf("role after the invitation = %q, want recruiter", role)
	}
	saveShot(t, ctx, "invited-member-signed-in.png")
	jsEval[bool](t, ctx, `document.querySelector("[data-testid=logout]").form.submit(), true`)
	chromeStep(t, ctx, "sign out again", chromedp.WaitVisible(byCSS(`[data-testid=login-form]`)))
	chromeStep(t, ctx, "the used link", chromedp.Navigate(link), chromedp.WaitVisible(byCSS(`[data-testid=link-invalid]`)))

	chromeStep(t, ctx, "ask for a password reset",
		chromedp.Navigate(env.url+"/login"),
		chromedp.WaitVisible(byCSS(`[data-testid=forgot-link]`)),
		chromedp.Click(byCSS(`[data-testid=forgot-link]`)),
		chromedp.WaitVisible(byCSS(`[data-testid=forgot-form]`)),
		chromedp.SendKeys(byCSS(`#email`), "rae@example.com"),
		chromedp.Click(byCSS(`[data-testid=forgot-submit]`)),
		chromedp.WaitVisible(byCSS(`[data-testid=flash]`)),
	)
	reset := smtpSrv.Wait(t, "rae@example.com", "Reset your Candor password", mailWait)
	chromeStep(t, ctx, "follow the reset link",
		chromedp.Navigate(onlyLink(t, reset, resetPath)),
		chromedp.WaitVisible(byCSS(`[data-testid=set-password-form]`)),
		chromedp.SendKeys(byCSS(`#password`), "rae's newer password"),
		chromedp.SendKeys(byCSS(`#confirm`), "rae's newer password"),
		chromedp.Click(byCSS(`[data-testid=set-password-submit]`)),
		chromedp.WaitVisible(byCSS(`[data-testid=org-name]`)),
	)
	env.login("rae@example.com", "rae's newer password")
}

package views

import "candor/store"

// ChooseOrg is the sign-in step of a person who belongs to several
// organizations.
type ChooseOrg struct {
	Orgs []OrgChoice
	Next string
}

// OrgChoice is one organization to sign in to.
type OrgChoice struct {
	TenantID, Name string
	Role           store.Role
	Current        bool // the one the person is signed in to now
}

// ForgotForm asks for the email to send a reset link to.
type ForgotForm struct {
	Email   string
	EmailOn bool
}

// SetPassword is the page a set-password link opens.
type SetPassword struct {
	Purpose     string // store.TokenInvite or store.TokenReset
	Action      string // where the form posts (the link's own path)
	Email, Org  string
	HasPassword bool // an invited person who has a password signs in instead
	Invalid     bool // unknown, used or expired link
}

// Account is the signed-in person's account page.
type Account struct {
	Organizations int
}

package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"candor/store"
	"candor/web/views"
)

func (s *Server) handleMembersPage(c echo.Context) error {
	return s.renderMembers(c, http.StatusOK, views.MemberForm{}, nil)
}

func (s *Server) renderMembers(c echo.Context, status int, f views.MemberForm, errs views.FormErrors) error {
	users, err := s.db.ListUsers(c.Request().Context(), principalOf(c).TenantID)
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	p, err := s.page(c, "Members", "members")
	if err != nil {
		return err
	}
	return render(c, status, views.MembersPage(p, views.Members{Users: users, Form: f, Errors: errs, EmailOn: s.emailOn()}))
}

// handleAddMember invites someone by email. A person new to Candor gets a
// link to choose their password; someone who already has a Candor account
// (in another organization) joins with the password they have. The answer
// is the same in both cases, so an owner learns nothing about accounts
// elsewhere.
func (s *Server) handleAddMember(c echo.Context) error {
	f := views.MemberForm{
		Name:  strings.TrimSpace(c.FormValue("name")),
		Email: strings.ToLower(strings.TrimSpace(c.FormValue("email"))),
		Role:  store.Role(c.FormValue("role")),
	}
	errs := views.FormErrors{}
	if f.Name == "" {
		errs["name"] = "Enter their name."
	} else if len(f.Name) > store.MaxNameLen {
		errs["name"] = fmt.Sprintf("Keep the name under %d characters.", store.MaxNameLen)
	}
	if !validEmail(f.Email) {
		errs["email"] = "Enter a valid email address."
	}
	if !f.Role.Valid() {
		errs["role"] = "Choose a role."
	}
	if len(errs) > 0 {
		return s.renderMembers(c, http.StatusUnprocessableEntity, f, errs)
	}
	pr := principalOf(c)
	ctx := c.Request().Context()
	u, err := s.db.AddMember(ctx, pr.TenantID, f.Email, f.Name, f.Role)
	if errors.Is(err, store.ErrConflict) {
		// They are in this organization's own list: nothing is disclosed.
		return s.renderMembers(c, http.StatusConflict, f, views.FormErrors{"email": "This person is a member of this organization already."})
	}
	if err != nil {
		return fmt.Errorf("add member: %w", err)
	}
	return s.inviteMember(c, u, fmt.Sprintf("%s was added as %s.", f.Name, f.Role))
}

// inviteMember sends (or, without email, shows) a member's invitation
// link, and flashes what happened after done.
func (s *Server) inviteMember(c echo.Context, u store.User, done string) error {
	pr := principalOf(c)
	ctx := c.Request().Context()
	t, err := s.db.Tenant(ctx, pr.TenantID)
	if err != nil {
		return fmt.Errorf("load tenant: %w", err)
	}
	token := randomToken()
	exp := time.Now().Add(memberInviteTTL)
	if err := s.db.CreatePersonToken(ctx, store.PersonToken{Hash: tokenHash(token), PersonID: u.PersonID,
		Purpose: store.TokenInvite, TenantID: pr.TenantID, ExpiresAt: exp}); err != nil {
		return fmt.Errorf("invitation token: %w", err)
	}
	link := s.cfg.PublicURL + invitationPath + token
	if !s.emailOn() {
		s.setFlash(c, "success", done+" Email is off on this server, so send them this invitation link yourself (it works once, for 7 days): "+link)
		return seeOther(c, "/members")
	}
	err = s.sendMail(ctx, u.Email, memberInviteEmail, memberData{
		Org: t.Name, Inviter: pr.Name, Name: u.Name, Link: link, Expires: exp, HasPassword: u.PasswordHash != "",
	})
	if err != nil {
		s.log.Error("member invitation: send email", "tenant", pr.TenantID, "user", u.ID, "err", err)
		s.setFlash(c, "error", done+" The invitation email could not be sent; use “Resend invitation” to try again.")
		return seeOther(c, "/members")
	}
	s.setFlash(c, "success", done+" We emailed them an invitation.")
	return seeOther(c, "/members")
}

// handleResendMemberInvite sends a pending member a fresh invitation.
func (s *Server) handleResendMemberInvite(c echo.Context) error {
	pr := principalOf(c)
	u, err := s.db.User(c.Request().Context(), pr.TenantID, c.Param("id"))
	if err != nil {
		return notFound(err, "member")
	}
	if u.JoinedAt != nil {
		s.setFlash(c, "error", u.Name+" has joined already.")
		return seeOther(c, "/members")
	}
	return s.inviteMember(c, u, "")
}

// handleChangeMemberRole changes another member's role. Owners cannot change
// their own, so an organization always keeps an owner.
func (s *Server) handleChangeMemberRole(c echo.Context) error {
	pr := principalOf(c)
	id := c.Param("id")
	role := store.Role(c.FormValue("role"))
	if !role.Valid() {
		return errorf(CodeBadRequest, "unknown role %q", role)
	}
	if id == pr.UserID {
		s.setFlash(c, "error", "You cannot change your own role. Ask another owner.")
		return seeOther(c, "/members")
	}
	ctx := c.Request().Context()
	u, err := s.db.User(ctx, pr.TenantID, id)
	if err != nil {
		return fmt.Errorf("load member: %w", err)
	}
	if err := s.db.UpdateUserRole(ctx, pr.TenantID, id, role); err != nil {
		return fmt.Errorf("change role: %w", err)
	}
	s.revokeLive(func(p *principal) bool { return p.TenantID == pr.TenantID && p.UserID == id })
	s.setFlash(c, "success", fmt.Sprintf("%s is now %s.", u.Name, role))
	return seeOther(c, "/members")
}

func (s *Server) handleRemoveMember(c echo.Context) error {
	pr := principalOf(c)
	id := c.Param("id")
	if id == pr.UserID {
		s.setFlash(c, "error", "You cannot remove yourself.")
		return seeOther(c, "/members")
	}
	ctx := c.Request().Context()
	u, err := s.db.User(ctx, pr.TenantID, id)
	if err != nil {
		return fmt.Errorf("load member: %w", err)
	}
	if err := s.db.DeleteUser(ctx, pr.TenantID, id); err != nil {
		return fmt.Errorf("remove member: %w", err)
	}
	s.revokeLive(func(p *principal) bool { return p.TenantID == pr.TenantID && p.UserID == id })
	s.setFlash(c, "success", fmt.Sprintf("%s was removed.", u.Name))
	return seeOther(c, "/members")
}

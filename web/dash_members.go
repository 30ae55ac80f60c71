package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

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
	return render(c, status, views.MembersPage(p, views.Members{Users: users, Form: f, Errors: errs}))
}

func (s *Server) handleAddMember(c echo.Context) error {
	f := views.MemberForm{
		Name:  strings.TrimSpace(c.FormValue("name")),
		Email: strings.ToLower(strings.TrimSpace(c.FormValue("email"))),
		Role:  store.Role(c.FormValue("role")),
	}
	password := c.FormValue("password")
	errs := views.FormErrors{}
	if f.Name == "" {
		errs["name"] = "Enter their name."
	}
	if !validEmail(f.Email) {
		errs["email"] = "Enter a valid email address."
	}
	if !f.Role.Valid() {
		errs["role"] = "Choose a role."
	}
	if len(password) < minPasswordLen {
		errs["password"] = fmt.Sprintf("Use at least %d characters.", minPasswordLen)
	}
	if len(errs) > 0 {
		return s.renderMembers(c, http.StatusUnprocessableEntity, f, errs)
	}
	hash, err := s.hashPassword(c.Request().Context(), password)
	if err != nil {
		return fmt.Errorf("add member: %w", err)
	}
	_, err = s.db.CreateUser(c.Request().Context(), principalOf(c).TenantID, f.Email, f.Name, f.Role, hash)
	if errors.Is(err, store.ErrConflict) {
		// Emails are unique across organizations; say no more than that.
		return s.renderMembers(c, http.StatusConflict, f, views.FormErrors{"email": "This email already has a Candor account."})
	}
	if err != nil {
		return fmt.Errorf("add member: %w", err)
	}
	s.setFlash(c, "success", fmt.Sprintf("%s added as %s.", f.Name, f.Role))
	return seeOther(c, "/members")
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
	s.setFlash(c, "success", fmt.Sprintf("%s was removed.", u.Name))
	return seeOther(c, "/members")
}

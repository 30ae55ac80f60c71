package web

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"

	"candor/processor/contract"
	"candor/web/views"
)

func (s *Server) handleAPIKeysPage(c echo.Context) error {
	return s.renderAPIKeys(c, http.StatusOK, views.APIKeys{})
}

func (s *Server) renderAPIKeys(c echo.Context, status int, d views.APIKeys) error {
	keys, err := s.db.ListAPIKeys(c.Request().Context(), principalOf(c).TenantID)
	if err != nil {
		return fmt.Errorf("list API keys: %w", err)
	}
	d.Keys = keys
	p, err := s.page(c, "API keys", "api-keys")
	if err != nil {
		return err
	}
	return render(c, status, views.APIKeysPage(p, d))
}

// handleCreateAPIKeyForm answers with the page itself rather than a
// redirect: the plaintext key exists only in this response (never in a
// cookie or a URL), and render marks it no-store.
func (s *Server) handleCreateAPIKeyForm(c echo.Context) error {
	name := strings.TrimSpace(c.FormValue("name"))
	switch {
	case name == "":
		return s.renderAPIKeys(c, http.StatusUnprocessableEntity, views.APIKeys{Name: name, Errors: views.FormErrors{"name": "Name the key after what will use it."}})
	case len(name) > 100:
		return s.renderAPIKeys(c, http.StatusUnprocessableEntity, views.APIKeys{Name: name, Errors: views.FormErrors{"name": "Keep the name under 100 characters."}})
	}
	plaintext, k, err := s.newAPIKey(c.Request().Context(), principalOf(c).TenantID, name)
	if err != nil {
		return err
	}
	return s.renderAPIKeys(c, http.StatusCreated, views.APIKeys{Created: plaintext, CreatedName: k.Name})
}

func (s *Server) handleRevokeAPIKey(c echo.Context) error {
	tenantID, id := principalOf(c).TenantID, c.Param("id")
	if err := s.db.RevokeAPIKey(c.Request().Context(), tenantID, id); err != nil {
		return fmt.Errorf("revoke API key: %w", err)
	}
	s.revokeLive(func(p *principal) bool { return p.TenantID == tenantID && p.APIKeyID == id })
	s.setFlash(c, "success", "API key revoked.")
	return seeOther(c, "/api-keys")
}

// secretName is an environment variable name: secrets reach processors as
// their environment.
var secretName = regexp.MustCompile(`^[A-Z_][A-Z0-9_]{0,63}$`)

const maxSecretLen = 8 << 10

func (s *Server) handleSettingsPage(c echo.Context) error {
	return s.renderSettings(c, http.StatusOK, views.Settings{})
}

func (s *Server) renderSettings(c echo.Context, status int, d views.Settings) error {
	list, err := s.db.ListSecrets(c.Request().Context(), principalOf(c).TenantID)
	if err != nil {
		return fmt.Errorf("list secrets: %w", err)
	}
	d.Secrets = list
	p, err := s.page(c, "Settings", "settings")
	if err != nil {
		return err
	}
	return render(c, status, views.SettingsPage(p, d))
}

// handleSetSecret creates or replaces a secret. The value is never echoed
// back, not even when the form has an error.
func (s *Server) handleSetSecret(c echo.Context) error {
	name := strings.TrimSpace(c.FormValue("name"))
	value := c.FormValue("value")
	errs := views.FormErrors{}
	if !secretName.MatchString(name) {
		errs["name"] = "Use one of: " + strings.Join(contract.TenantSecretNames, ", ") + "."
	}
	switch {
	case strings.TrimSpace(value) == "":
		errs["value"] = "Enter the value."
	case len(value) > maxSecretLen:
		errs["value"] = fmt.Sprintf("A secret holds at most %d bytes.", maxSecretLen)
	}
	if len(errs) == 0 {
		if err := s.checkTenantSecret(c.Request().Context(), name, value); err != nil {
			key := "value"
			if !contract.TenantSecretAllowed(name) {
				key = "name"
			}
			errs[key] = err.Error() + "."
		}
	}
	if len(errs) > 0 {
		return s.renderSettings(c, http.StatusUnprocessableEntity, views.Settings{Name: name, Errors: errs})
	}
	if err := s.db.SetSecret(c.Request().Context(), principalOf(c).TenantID, name, value); err != nil {
		return fmt.Errorf("set secret: %w", err)
	}
	s.setFlash(c, "success", name+" saved.")
	return seeOther(c, "/settings")
}

func (s *Server) handleDeleteSecret(c echo.Context) error {
	name := c.FormValue("name")
	if err := s.db.DeleteSecret(c.Request().Context(), principalOf(c).TenantID, name); err != nil {
		return fmt.Errorf("delete secret: %w", err)
	}
	s.setFlash(c, "success", name+" deleted.")
	return seeOther(c, "/settings")
}

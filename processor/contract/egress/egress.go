// Package egress is the one rule for connections Candor makes to a URL a
// tenant chose (a tenant's OPENAI_BASE_URL, a webhook endpoint): https
// only, and never to loopback, private, link-local, shared (CGNAT) or cloud
// metadata addresses, unless the operator allows private targets
// (--allow-private-targets, needed for self-hosted model servers and
// tests). Check a URL when it is saved (CheckURL), and again at connect
// time (Dialer, Transport), since DNS can change in between.
//
// Errors never quote the URL: it may carry credentials.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrPrivateTarget is wrapped by every refusal of an address.
var ErrPrivateTarget = errors.New("points at a private, loopback, link-local or metadata address")

// ErrNotHTTPS is wrapped when a URL is not https and private targets are
// not allowed.
var ErrNotHTTPS = errors.New("must be an https URL")

// CheckURL checks raw (a base URL or endpoint) against the rule and, unless
// allowPrivate, resolves its host and checks every address. The error
// names the problem without quoting raw.
func CheckURL(ctx context.Context, raw string, allowPrivate bool) error {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || u.Opaque != "" {
		return errors.New("is not an absolute URL such as https://api.example.com")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowPrivate {
			return ErrNotHTTPS
		}
	default:
		return errors.New("is not an http(s) URL such as https://api.example.com")
	}
	if u.User != nil {
		return errors.New("must not carry a user name or password: give the key in OPENAI_API_KEY (or the secret field) instead")
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		return CheckAddr(ip)
	}
	lower := strings.ToLower(strings.TrimSuffix(host, "."))
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") || strings.HasSuffix(lower, ".internal") ||
		strings.HasSuffix(lower, ".local") || strings.HasSuffix(lower, ".flycast") {
		return ErrPrivateTarget
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return errors.New("names a host that does not resolve")
	}
	for _, a := range addrs {
		if err := CheckAddr(a); err != nil {
			return err
		}
	}
	return nil
}

// special are the ranges a tenant's target may not be in, beyond what
// netip's predicates cover.
var special = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this" network
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (CGNAT)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("100::/64"),        // discard
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fc00::/7"),        // unique local (Fly's 6PN fdaa::/16, AWS fd00:ec2::254)
}

// CheckAddr refuses an address a tenant's target may not have: loopback,
// private, link-local (169.254.169.254, the metadata service, is one),
// unspecified, multicast and the special ranges above. IPv4-mapped and
// NAT64 addresses are judged by the IPv4 address they carry.
func CheckAddr(ip netip.Addr) error {
	ip = ip.Unmap()
	if nat64 := netip.MustParsePrefix("64:ff9b::/96"); nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return ErrPrivateTarget
	}
	for _, p := range special {
		if p.Contains(ip) {
			return ErrPrivateTarget
		}
	}
	return nil
}

// control is a net.Dialer Control hook: it runs after name resolution,
// on the address actually dialed.
func control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("egress: dial %s: %w", network, ErrPrivateTarget)
	}
	if err := CheckAddr(ap.Addr()); err != nil {
		return fmt.Errorf("egress: refusing to connect: the target %w", err)
	}
	return nil
}

// Dialer returns a dialer that refuses private targets at connect time.
func Dialer() *net.Dialer {
	return &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: control}
}

// Transport returns an HTTP transport that connects only to public
// addresses. It ignores proxy settings: a proxy would connect on its
// behalf, out of the check's reach.
func Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = Dialer().DialContext
	return t
}

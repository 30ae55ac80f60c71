package fly

import (
	"slices"
	"strings"
)

// Provider is a machine backend as it registers itself: what the control
// plane's configuration and dashboard need to know about it. Its
// constructor (NewLocal, NewFly, ...) takes a config of its own, which main
// builds from its flags.
type Provider struct {
	Name string
	Help string
	// Settings are the environment settings (secrets, without flags) the
	// control plane must have to use it.
	Settings []string
	// Warm is what its warm pool (--warm-pool) keeps ready.
	Warm string
	// Direct says browsers reach its processors at their own URL; otherwise
	// through the control plane's /p/{interview id} route.
	Direct bool
}

// Provider names, as stored in the machines table (as text: a new provider
// needs no migration).
const (
	ProviderLocal = "local"
	ProviderFly   = "fly"
)

// DefaultProvider is where processors run unless configured otherwise.
const DefaultProvider = ProviderLocal

var providers = []Provider{
	{Name: ProviderLocal, Help: "local child processes", Warm: "idle processor processes, claimed by the next interview", Direct: true},
	{Name: ProviderFly, Help: "Fly Machines", Settings: []string{"FLY_API_TOKEN", "FLY_ORG", "FLY_PROCESSOR_IMAGE"}, Warm: "stopped machines per tenant in the default region"},
}

// Providers lists the registered providers, the default first.
func Providers() []Provider { return slices.Clone(providers) }

// LookupProvider returns the provider registered as name.
func LookupProvider(name string) (Provider, bool) {
	i := slices.IndexFunc(providers, func(p Provider) bool { return p.Name == name })
	if i < 0 {
		return Provider{}, false
	}
	return providers[i], true
}

// ProviderNames lists the registered providers' names.
func ProviderNames() []string {
	var names []string
	for _, p := range providers {
		names = append(names, p.Name)
	}
	return names
}

// ProviderHelp is the --provisioner help text.
func ProviderHelp() string {
	var parts []string
	for _, p := range providers {
		parts = append(parts, p.Name+" ("+p.Help+")")
	}
	return strings.Join(parts, ", ")
}

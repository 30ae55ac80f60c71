// Package registry is how the processor's pluggable parts (speech engines,
// voices, interviewers) register once by name, so that configuration, the
// warm pool and eval-stt read one list instead of string literals.
package registry

import (
	"fmt"
	"slices"
)

// Set holds the registered specs of one kind, by name.
type Set[S any] struct {
	kind, def string
	specs     map[string]S
}

// New returns an empty set of kind (for messages) whose default is def.
func New[S any](kind, def string) *Set[S] {
	return &Set[S]{kind: kind, def: def, specs: map[string]S{}}
}

// Register adds spec as name; called from the init of the file that
// implements it. An empty or duplicate name is a programming error.
func (s *Set[S]) Register(name string, spec S) {
	if _, dup := s.specs[name]; dup || name == "" {
		panic(fmt.Sprintf("bad or duplicate registration of %s %q", s.kind, name))
	}
	s.specs[name] = spec
}

// Lookup returns the spec registered as name ("" is the default).
func (s *Set[S]) Lookup(name string) (S, bool) {
	if name == "" {
		name = s.def
	}
	spec, ok := s.specs[name]
	return spec, ok
}

// Names lists the registered names, the default first, then in order.
func (s *Set[S]) Names() []string {
	names := make([]string, 0, len(s.specs))
	for name := range s.specs {
		names = append(names, name)
	}
	slices.Sort(names)
	if i := slices.Index(names, s.def); i > 0 {
		names = slices.Insert(slices.Delete(names, i, i+1), 0, s.def)
	}
	return names
}

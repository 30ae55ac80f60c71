package registry

import (
	"slices"
	"testing"
)

func TestASetListsItsDefaultFirstAndRefusesADuplicate(t *testing.T) {
	s := New[int]("thing", "b")
	s.Register("c", 3)
	s.Register("b", 2)
	s.Register("a", 1)
	if got := s.Names(); !slices.Equal(got, []string{"b", "a", "c"}) {
		t.Errorf("Names = %q, want the default first, then by name", got)
	}
	if v, ok := s.Lookup(""); !ok || v != 2 {
		t.Errorf(`Lookup("") = %v, %v; want the default`, v, ok)
	}
	if _, ok := s.Lookup("z"); ok {
		t.Error("an unregistered name was found")
	}
	defer func() {
		if recover() == nil {
			t.Error("a duplicate registration did not panic")
		}
	}()
	s.Register("a", 9)
}

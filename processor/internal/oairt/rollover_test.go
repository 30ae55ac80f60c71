package oairt

import (
	"testing"
	"time"
)

func TestRolloverWaitsForAQuietMomentUntilTheHardSwitch(t *testing.T) {
	r := Rollover{Max: 55 * time.Minute, Hard: 2 * time.Minute}
	tests := []struct {
		name  string
		age   time.Duration
		quiet bool
		near  bool
		due   bool
	}{
		{"a young session stays", 10 * time.Minute, true, false, false},
		{"at the limit a quiet moment hands over", 55 * time.Minute, true, true, true},
		{"at the limit speech keeps the session", 56 * time.Minute, false, true, false},
		{"past the hard switch speech no longer does", 57 * time.Minute, false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.Near(tt.age); got != tt.near {
				t.Errorf("Near = %v, want %v", got, tt.near)
			}
			if got := r.Due(tt.age, tt.quiet); got != tt.due {
				t.Errorf("Due = %v, want %v", got, tt.due)
			}
		})
	}
	opened := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	if got := Age(opened, opened.Add(time.Minute), 3*60*Rate); got != 3*time.Minute {
		t.Errorf("Age = %v, want the 3 minutes of audio sent, more than the minute of wall time", got)
	}
}

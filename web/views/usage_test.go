package views

import (
	"strings"
	"testing"
	"time"
)

func TestInterviewsPageUsage(t *testing.T) {
	t.Run("the usage card shows this month's machine time, its cost and the 1,000-interview answer", func(t *testing.T) {
		data := sampleInterviews()
		data.Usage = &Usage{Month: time.Date(2025, time.March, 1, 0, 0, 0, 0, time.UTC), MachineSeconds: 2*3600 + 30*60, PricePerHour: 0.0079}
		d := renderDoc(t, InterviewsPage(pageAs(viewer), data))
		d.mustHave("usage", "usage-machine-time", "usage-cost", "usage-1000")
		for id, want := range map[string]string{
			"usage-machine-time": "2h 30m",
			"usage-cost":         "$0.0198",
			"usage-1000":         "$7.90 / month at $0.0079 per machine-hour",
		} {
			if got := text(d.byTestID(id)[0]); got != want {
				t.Errorf("%s = %q, want %q", id, got, want)
			}
		}
		if got := text(d.byTestID("usage")[0]); !strings.Contains(got, "March 2025") {
			t.Errorf("usage card does not name the month: %q", got)
		}
	})
	t.Run("a price set by the operator changes the estimate", func(t *testing.T) {
		data := sampleInterviews()
		data.Usage = &Usage{Month: time.Now(), PricePerHour: 0.02}
		d := renderDoc(t, InterviewsPage(pageAs(owner), data))
		if got, want := text(d.byTestID("usage-1000")[0]), "$20.00 / month at $0.02 per machine-hour"; got != want {
			t.Errorf("usage-1000 = %q, want %q", got, want)
		}
		if got := text(d.byTestID("usage-cost")[0]); got != "$0.00" {
			t.Errorf("usage-cost with no machine time = %q, want $0.00", got)
		}
	})
	t.Run("without usage data the card is absent", func(t *testing.T) {
		d := renderDoc(t, InterviewsPage(pageAs(owner), sampleInterviews()))
		d.mustNotHave("usage")
	})
}

func TestTheUsageCardOnFlyAddsTheIPv4AndEgress(t *testing.T) {
	data := sampleInterviews()
	data.Usage = &Usage{Month: time.Now(), PricePerHour: 0.0079, Fly: &FlyCost{Transport: "webrtc-udp", IPv4PerMonth: 2, EgressGB: 94, Egress: 1.88, Total: 11.78}}
	d := renderDoc(t, InterviewsPage(pageAs(owner), data))
	for id, want := range map[string]string{
		"usage-ipv4":       "$2.00 / month (this organization's app)",
		"usage-egress":     "94 GB per 1,000 interview-hours, $1.88",
		"usage-1000-total": "$11.78 / month",
	} {
		if got := text(d.byTestID(id)[0]); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
}

package fly

import (
	"math"
	"testing"
)

func TestTheCostOfAThousandHourLongInterviews(t *testing.T) {
	m := DefaultCostModel(0.0079, true).Month(1000, 1, 1)
	near := func(a, b float64) bool { return math.Abs(a-b) < 0.005 }
	if !near(m.Machine, 7.90) || !near(m.IPv4, 2) || !near(m.EgressGB, 94) || !near(m.Egress, 1.88) || !near(m.Total, 11.78) {
		t.Errorf("month %+v", m)
	}
	if ws := DefaultCostModel(0.0079, false).Month(1000, 1, 1); ws.IPv4 != 0 {
		t.Errorf("without direct UDP no dedicated IPv4 is billed: %+v", ws)
	}
}

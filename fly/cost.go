package fly

// The cost of interviews on Fly, for the usage card and `candor bench
// machines`. Prices are Fly's list prices (https://fly.io/docs/about/pricing/):
// a shared-cpu-1x machine with 1 GB runs about $0.0079 an hour, a dedicated
// IPv4 is $2 a month per app, outbound data transfer from North America and
// Europe $0.02 per GB (other regions up to $0.12).

// Transport names how a candidate's audio reaches the machine.
type Transport string

const (
	TransportUDP       Transport = "webrtc-udp"  // direct to the machine's published port
	TransportTURN      Transport = "webrtc-turn" // through a TURN server
	TransportWebSocket Transport = "websocket"   // /ws/audio (WebM/Opus), replayed by the edge
)

// BytesPerInterviewHour is what one interview moves between the candidate
// and its machine per hour, both directions (the candidate's audio up; the
// interviewer's voice, captions and state down), measured with Chromium
// through flyfake's edge (TestInterviewEndToEndOnFly*, see the fly note).
// Fly bills the outbound part; counting both is an upper bound.
//
// The windows measured were short (15–30 s of speech after the greeting), so
// the interviewer's speech weighs more than over an hour: upper bounds.
var BytesPerInterviewHour = map[Transport]float64{
	TransportUDP:       94e6, // 56 MB/h UDP (audio up, data channel down) + 38 MB/h /events
	TransportTURN:      84e6, // 35 MB/h per TURN leg + 49 MB/h /events
	TransportWebSocket: 57e6, // 9.3 MB/h /ws/audio WebM/Opus (2.6 KB/s) + 48 MB/h /events
}

// CostModel prices a month of interviews.
type CostModel struct {
	MachinePerHour        float64 // USD per machine-hour
	DedicatedIPv4PerMonth float64 // USD per tenant app per month; 0 without direct UDP
	EgressPerGB           float64 // USD per GB out of Fly
	Transport             Transport
}

// DefaultCostModel is Fly's list prices with direct UDP when udp is true.
func DefaultCostModel(machinePerHour float64, udp bool) CostModel {
	m := CostModel{MachinePerHour: machinePerHour, EgressPerGB: 0.02, Transport: TransportWebSocket}
	if udp {
		m.DedicatedIPv4PerMonth, m.Transport = 2, TransportUDP
	}
	return m
}

// Month is a month's cost of interviews hour-long interviews in tenants
// tenant apps.
type Month struct {
	Machine, IPv4, Egress, Total float64
	EgressGB                     float64
}

// Month prices n interviews of hours each across tenants tenant apps.
func (m CostModel) Month(n int, hours float64, tenants int) Month {
	var out Month
	out.Machine = float64(n) * hours * m.MachinePerHour
	out.IPv4 = float64(tenants) * m.DedicatedIPv4PerMonth
	out.EgressGB = float64(n) * hours * BytesPerInterviewHour[m.Transport] / 1e9
	out.Egress = out.EgressGB * m.EgressPerGB
	out.Total = out.Machine + out.IPv4 + out.Egress
	return out
}

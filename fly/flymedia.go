package fly

import (
	"context"
	"fmt"
	"net/http"

	fly "github.com/superfly/fly-go"
)

// Direct WebRTC on Fly: each interview machine publishes one UDP port of
// FlyConfig.MediaPorts in its own services, so packets to
// <dedicated IPv4>:<port> reach exactly that machine. Ports are unique among
// an app's machines that are not destroyed. The set in use is read from the
// API once per app and then kept here (one control plane per org, as the
// warm pool assumes); it is read again when the range looks full.

type appPorts struct {
	seeded bool
	used   map[int]string // port → machine id ("" while its launch runs)
}

// takeMediaPort reserves a free media port in app, or 0 when direct UDP is
// off.
func (f *Fly) takeMediaPort(ctx context.Context, app string) (int, error) {
	lo, hi := f.cfg.MediaPorts[0], f.cfg.MediaPorts[1]
	if lo == 0 {
		return 0, nil
	}
	for round := 0; round < 2; round++ {
		f.mu.Lock()
		p := f.ports[app]
		seeded := p != nil && p.seeded
		f.mu.Unlock()
		if !seeded || round == 1 {
			if err := f.seedMediaPorts(ctx, app); err != nil {
				return 0, err
			}
		}
		f.mu.Lock()
		p = f.ports[app]
		for port := lo; port <= hi; port++ {
			if _, taken := p.used[port]; !taken {
				p.used[port] = ""
				f.mu.Unlock()
				return port, nil
			}
		}
		f.mu.Unlock()
	}
	return 0, fmt.Errorf("fly: every media port of %d-%d is in use in %s; widen CANDOR_FLY_MEDIA_PORTS", lo, hi, app)
}

// seedMediaPorts reads the UDP ports the app's live machines publish,
// keeping reservations of launches still running.
func (f *Fly) seedMediaPorts(ctx context.Context, app string) error {
	var ms []*fly.Machine
	err := f.retry(ctx, true, func() (err error) { ms, err = f.api.List(ctx, app, ""); return err })
	if err != nil && statusOf(err) != http.StatusNotFound {
		return fmt.Errorf("fly: list machines of %s for their media ports: %w", app, err)
	}
	used := map[int]string{}
	for _, m := range ms {
		if m.State == fly.MachineStateDestroyed || m.Config == nil {
			continue
		}
		for _, svc := range m.Config.Services {
			if svc.Protocol == "udp" {
				used[svc.InternalPort] = m.ID
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if old := f.ports[app]; old != nil {
		for port, id := range old.used {
			if id == "" {
				used[port] = ""
			}
		}
	}
	f.ports[app] = &appPorts{seeded: true, used: used}
	return nil
}

// bindMediaPort records which machine holds a reserved port.
func (f *Fly) bindMediaPort(app string, port int, id string) {
	if port == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.ports[app]; p != nil {
		p.used[port] = id
	}
}

// releaseMediaPort frees port (or, with port 0, whatever machine id
// holds).
func (f *Fly) releaseMediaPort(app string, port int, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.ports[app]
	if p == nil {
		return
	}
	if port != 0 {
		if p.used[port] == id {
			delete(p.used, port)
		}
		return
	}
	for port, holder := range p.used {
		if holder == id && id != "" {
			delete(p.used, port)
		}
	}
}

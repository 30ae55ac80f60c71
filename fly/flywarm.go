package fly

import (
	"context"
	"fmt"
	"sync"
	"time"

	fly "github.com/superfly/fly-go"
)

// The Fly warm pool keeps machines created with skip_launch — stopped, never
// started, costing only their root filesystem — in each tenant app and
// region that has launched an interview. A launch updates one with the
// interview's config (which starts it) instead of creating a machine.
//
// Claims are coordinated in memory, so one control plane per Fly org is
// assumed; two would need machine leases.

// metaPool marks a warm machine; it has no candor_interview, so List (and
// reconciliation) leave it alone.
const metaPool = "candor_pool"

type poolKey struct{ app, region string }

type warmRequest struct {
	key      poolKey
	tenantID string
}

type warmPool struct {
	mu      sync.Mutex
	idle    map[poolKey][]string // warm machine ids, oldest first
	adopted map[poolKey]bool     // existing warm machines looked up once

	requests chan warmRequest
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{} // closed when keepWarm returned
	stopOnce sync.Once
}

func (p *warmPool) init() {
	p.idle = make(map[poolKey][]string)
	p.adopted = make(map[poolKey]bool)
	p.requests = make(chan warmRequest, 64)
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.done = make(chan struct{})
}

func (p *warmPool) stop() {
	p.stopOnce.Do(p.cancel)
	<-p.done
}

// requestWarm asks keepWarm to top up key's pool. It never blocks: a full
// queue already holds enough work, and the next launch asks again.
func (f *Fly) requestWarm(key poolKey, tenantID string) {
	if f.cfg.WarmPerRegion[key.region] <= 0 {
		return
	}
	select {
	case f.pool.requests <- warmRequest{key: key, tenantID: tenantID}:
	default:
	}
}

// takeWarm removes and returns an idle warm machine of key, or "".
func (f *Fly) takeWarm(key poolKey) string {
	f.pool.mu.Lock()
	defer f.pool.mu.Unlock()
	ids := f.pool.idle[key]
	if len(ids) == 0 {
		return ""
	}
	f.pool.idle[key] = ids[1:]
	return ids[0]
}

// claimWarm gives warm machine id the interview's config. Without
// skip_launch the update starts it; waitReady then waits as for a new one.
func (f *Fly) claimWarm(ctx context.Context, app, id string, in fly.LaunchMachineInput) (*fly.Machine, error) {
	in.ID = id
	var fm *fly.Machine
	err := f.retry(ctx, true, func() (err error) { fm, err = f.api.Update(ctx, app, in, ""); return err })
	if err != nil {
		return nil, err
	}
	f.log.Info("claimed warm fly machine", "app", app, "machine", id, "interview", in.Config.Metadata[metaInterview])
	return fm, nil
}

// keepWarm serves requestWarm until Close.
func (f *Fly) keepWarm() {
	defer close(f.pool.done)
	for {
		select {
		case <-f.pool.ctx.Done():
			return
		case req := <-f.pool.requests:
			if err := f.fillWarm(f.pool.ctx, req); err != nil && f.pool.ctx.Err() == nil {
				f.log.Error("fill fly warm pool", "app", req.key.app, "region", req.key.region, "err", err)
			}
		}
	}
}

// adoptWarm looks up, once per app and region, the warm machines a previous
// run left there.
func (f *Fly) adoptWarm(ctx context.Context, key poolKey) error {
	f.pool.mu.Lock()
	adopted := f.pool.adopted[key]
	f.pool.mu.Unlock()
	if adopted {
		return nil
	}
	var ms []*fly.Machine
	err := f.retry(ctx, true, func() (err error) { ms, err = f.api.List(ctx, key.app, ""); return err })
	if err != nil {
		return fmt.Errorf("list machines: %w", err)
	}
	f.pool.mu.Lock()
	defer f.pool.mu.Unlock()
	if f.pool.adopted[key] {
		return nil
	}
	for _, m := range ms {
		warm := m.Config != nil && m.Config.Metadata[metaPool] == "1" && m.Config.Metadata[metaInterview] == "" && m.Config.Metadata[metaInstall] == f.cfg.InstallID
		idle := m.State == fly.MachineStateCreated || m.State == fly.MachineStateStopped
		if warm && idle && m.Region == key.region {
			f.pool.idle[key] = append(f.pool.idle[key], m.ID)
		}
	}
	f.pool.adopted[key] = true
	return nil
}

// fillWarm creates warm machines until key's pool holds WarmPerRegion.
func (f *Fly) fillWarm(ctx context.Context, req warmRequest) error {
	key := req.key
	if err := f.adoptWarm(ctx, key); err != nil {
		return err
	}
	for ctx.Err() == nil {
		f.pool.mu.Lock()
		need := f.cfg.WarmPerRegion[key.region] - len(f.pool.idle[key])
		f.pool.mu.Unlock()
		if need <= 0 {
			return nil
		}
		if err := f.yieldToLaunches(ctx); err != nil {
			return err
		}
		in := fly.LaunchMachineInput{
			Name:       "warm-" + randomHex(6),
			Region:     key.region,
			SkipLaunch: true,
			Config: f.machineConfig(map[string]string{envPort: fmt.Sprint(f.cfg.InternalPort)}, nil,
				map[string]string{metaTenant: req.tenantID, metaPool: "1", metaInstall: f.cfg.InstallID}),
		}
		fm, err := f.create(ctx, key.app, in)
		if err != nil {
			return err
		}
		f.pool.mu.Lock()
		f.pool.idle[key] = append(f.pool.idle[key], fm.ID)
		f.pool.mu.Unlock()
	}
	return ctx.Err()
}

// yieldToLaunches waits until no Launch is in progress: a refill spends the
// same per-app create budget (1/s, burst 3) an interview start needs, and a
// candidate waiting for a start comes first.
func (f *Fly) yieldToLaunches(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for f.launching.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

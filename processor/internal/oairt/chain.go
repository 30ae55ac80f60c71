package oairt

import (
	"context"
	"sync"
	"time"
)

// Leg is one Realtime session of a Chain. A user embeds it in its own
// session type, which adds what it tracks per session (items, turns, audio
// sent) under its own lock.
type Leg struct {
	Conn *Conn
	// Opened is when the session started to count against the service's
	// cap: its dial, reset when it becomes current. Owned by the writer.
	Opened time.Time
	done   chan struct{} // closed when the reader stops
}

// NewLeg wraps a dialled connection.
func NewLeg(conn *Conn) Leg { return Leg{Conn: conn, Opened: time.Now(), done: make(chan struct{})} }

func (l *Leg) leg() *Leg { return l }

// legOf is a user's session type: a pointer to a struct embedding Leg.
type legOf interface {
	comparable
	leg() *Leg
}

// Hooks are what a Chain's user does with its sessions; the chain does
// the rest (reading, switching, retiring, ordering the release).
type Hooks[S any] struct {
	// Handle applies one server event of s, on s's reader goroutine.
	Handle func(s S, ev Event)
	// Ended is told that s's connection ended with err; its reader stops.
	Ended func(s S, err error)
	// Drain ends the open turn of a session being retired and waits,
	// bounded by ctx, for what it still owes (transcriptions, answers).
	Drain func(ctx context.Context, s S)
	// Retired marks s as closed on purpose (its connection is about to be
	// closed, which is then no error) and what it still owes as given up.
	Retired func(s S)
	// Release hands on what the sessions have ready, with Chain.Release.
	Release func()
}

// Chain is the run of Realtime sessions one stream or conversation goes
// through, one after the other because the service caps a session at 60
// minutes (see Rollover). One session is current and takes the audio; older
// ones are retired in the background; results are released session after
// session, so every sample goes to exactly one session and nothing is
// released twice or out of order.
type Chain[S legOf] struct {
	hooks  Hooks[S]
	wg     sync.WaitGroup // readers, retirements, Go
	emitMu sync.Mutex     // serialises releases

	mu   sync.Mutex
	cur  S
	open []S // oldest first: the sessions results are still released from
}

// NewChain returns a chain with no session; Start gives it its first.
func NewChain[S legOf](h Hooks[S]) *Chain[S] { return &Chain[S]{hooks: h} }

// Open starts s's reader and configures the session; it returns once the
// server has acknowledged config. On failure s is retired and closed.
func (c *Chain[S]) Open(ctx context.Context, s S, config Session) error {
	l := s.leg()
	c.Go(func() {
		defer close(l.done)
		for {
			ev, err := l.Conn.Read()
			if err != nil {
				c.hooks.Ended(s, err)
				return
			}
			c.hooks.Handle(s, ev)
		}
	})
	if err := l.Conn.Update(ctx, config); err != nil {
		c.hooks.Retired(s) // abandoned on purpose: no error from its reader
		l.Conn.Close()
		<-l.done
		return err
	}
	return nil
}

// Start makes s the first, current session.
func (c *Chain[S]) Start(s S) {
	c.mu.Lock()
	c.cur, c.open = s, []S{s}
	c.mu.Unlock()
}

// Current is the session that takes audio now.
func (c *Chain[S]) Current() S {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// Alone reports whether s is the only session results are released from.
func (c *Chain[S]) Alone(s S) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.open) == 1 && c.open[0] == s
}

// SwitchTo makes next, an opened session, current: the caller sends every
// later sample to it. The old session is retired in the background with ctx.
func (c *Chain[S]) SwitchTo(ctx context.Context, next S) {
	c.mu.Lock()
	old := c.cur
	next.leg().Opened = time.Now()
	c.cur = next
	c.open = append(c.open, next)
	c.mu.Unlock()
	c.Go(func() { c.Retire(ctx, old) })
}

// Retire drains s (Hooks.Drain), then marks it retired, closes it, waits
// for its reader and releases what it had.
func (c *Chain[S]) Retire(ctx context.Context, s S) {
	defer func() {
		c.hooks.Retired(s)
		s.leg().Conn.Close()
		<-s.leg().done
		c.hooks.Release()
	}()
	c.hooks.Drain(ctx, s)
}

// Release walks the sessions oldest first: take collects what a session
// has ready, in its conversation order, and reports whether the session is
// finished (retired, nothing left). A finished session other than the
// current one is dropped and the walk goes on; otherwise it stops, so a
// session's results never overtake an older session's. emit then delivers
// what was collected, serialised with other releases.
func (c *Chain[S]) Release(take func(S) (finished bool), emit func()) {
	c.emitMu.Lock()
	defer c.emitMu.Unlock()
	c.mu.Lock()
	for len(c.open) > 0 {
		s := c.open[0]
		if !take(s) || s == c.cur {
			break
		}
		c.open = c.open[1:]
	}
	c.mu.Unlock()
	emit()
}

// Go runs f as one of the chain's goroutines (see Wait).
func (c *Chain[S]) Go(f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

// Wait waits for the chain's readers, retirements and Go functions. The
// caller must have stopped switching and opening sessions first.
func (c *Chain[S]) Wait() { c.wg.Wait() }

package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cutProxy is a TCP proxy in front of the control plane's public URL. The
// processors reach the control plane through it (--public-url points here);
// cut closes its listener and every open connection, so a processor's
// connect is refused, until heal listens on the same address again.
type cutProxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        map[net.Conn]bool
	refused      int // connections accepted while cut (should stay 0: the port is closed)
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	p := &cutProxy{target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *cutProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
}

func (p *cutProxy) pipe(c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // cut between Accept and here
		p.mu.Unlock()
		c.Close()
		u.Close()
		return
	}
	p.conns[c], p.conns[u] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(u, c); done <- struct{}{} }()
	go func() { io.Copy(c, u); done <- struct{}{} }()
	<-done
	c.Close()
	u.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, u)
	p.mu.Unlock()
}

// cut refuses every new connection and breaks the open ones.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// heal listens on the proxy's address again.
func (p *cutProxy) heal(t *testing.T) {
	t.Helper()
	var ln net.Listener
	waitUntil(t, 10*time.Second, "the proxy's port to be free again", func() bool {
		var err error
		ln, err = net.Listen("tcp", p.addr)
		return err == nil
	})
	p.serve(ln)
}

// chunkClient is the seed's chunk-API client: it posts 250 ms chunks of
// audio/pcm to /process-audio at the pace of speech and simply retries a
// POST that failed. It keeps the answers that were not a 200: handOvers
// (503 with Retry-After, after which it waits as told) and failures
// (anything else: a refused connection, a 404, a 503 without Retry-After).
type chunkClient struct {
	p         *plane
	url       string
	token     string
	seq       int64
	handOvers int
	failures  []string
}

func (c *chunkClient) send(t *testing.T, pcm []byte, paced bool) {
	t.Helper()
	const chunk = 16000 * 2 / 4
	next := time.Now()
	for off := 0; off < len(pcm); off += chunk {
		body := map[string]any{
			"audio_chunk": base64.StdEncoding.EncodeToString(pcm[off:min(off+chunk, len(pcm))]), "speaker": "candidate",
			"sequence_number": c.seq, "mime_type": "audio/pcm;rate=16000",
		}
		for attempt := 0; ; attempt++ {
			status, retryAfter, b, err := c.post(body)
			if err == nil && status == http.StatusOK {
				break
			}
			if attempt > 200 {
				t.Fatalf("chunk %d refused 200 times: %d %s %v", c.seq, status, b, err)
			}
			if wait, perr := strconv.Atoi(retryAfter); err == nil && status == http.StatusServiceUnavailable && perr == nil && wait >= 0 {
				c.handOvers++
				time.Sleep(time.Duration(wait) * time.Second)
				continue
			}
			c.failures = append(c.failures, strings.TrimSpace(strings.Join([]string{strconv.Itoa(status), string(b), errString(err)}, " ")))
			time.Sleep(250 * time.Millisecond)
		}
		c.seq++
		if paced {
			next = next.Add(250 * time.Millisecond)
			time.Sleep(time.Until(next))
		}
	}
}

func (c *chunkClient) post(body map[string]any) (status int, retryAfter string, _ []byte, _ error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, "", nil, err
	}
	req, err := http.NewRequest("POST", c.url+"/process-audio", bytes.NewReader(b))
	if err != nil {
		return 0, "", nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := c.p.client.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("Retry-After"), rb, nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func entriesText(entries []apiEntry) []rtEntry {
	var out []rtEntry
	for _, e := range entries {
		if e.Speaker == "candidate" {
			out = append(out, rtEntry{Text: e.Text})
		}
	}
	return out
}

// proxiedPlane starts a control plane with tenant Acme whose processors
// reach it only through a cutProxy (its --public-url).
func proxiedPlane(t *testing.T, args ...string) (*plane, *cutProxy, string) {
	t.Helper()
	addr := freeAddr(t)
	proxy := newCutProxy(t, addr)
	proxyURL := "http://" + proxy.addr
	p := startPlaneAt(t, addr, []string{"Acme"}, append([]string{"--warm-pool=0", "--public-url=" + proxyURL}, args...), nil)
	return p, proxy, proxyURL
}

// partitionClips are the five LibriVox clips the partition tests speak,
// with their reference texts.
func partitionClips(t *testing.T) (clips, reference []string) {
	clips = []string{"0870", "0880", "0890", "0920", "0930"}
	refs := librivoxRefs(t)
	for _, c := range clips {
		reference = append(reference, refs["sense_and_sensibility_01_austen_64kb-"+c])
	}
	return clips, reference
}

// TestABridgePartitionOfEightSecondsLosesNothingAndReplacesNothing is issue
// 11's headline: a chunk-API interview while every connection from the
// processor to the control plane is refused for 8 s (the client reaches the
// control plane and the processor directly). The processor is kept (the
// control plane probes it directly), every chunk is accepted, every entry
// arrives once, and the transcript is as good as the same audio's with no
// outage.
func TestABridgePartitionOfEightSecondsLosesNothingAndReplacesNothing(t *testing.T) {
	p, proxy, proxyURL := proxiedPlane(t)
	key := p.keys["Acme"].Key
	clips, reference := partitionClips(t)
	// direct is where the client sends chunks: the start answer's URL, but
	// reached without the proxy that only the processor goes through.
	direct := func(u string) string {
		if strings.HasPrefix(u, proxyURL) {
			return p.url + strings.TrimPrefix(u, proxyURL)
		}
		return u
	}

	interview := func(outage bool) (recall float64, entries []apiEntry, c *chunkClient) {
		id := p.schedule(t, "Acme")
		var st apiStart
		p.call(t, "POST", "/api/v1/interviews/"+id+"/start", key, nil, &st)
		machine := p.interview(t, "Acme", id).Machine
		c = &chunkClient{p: p, url: direct(st.Processor.URL), token: st.Processor.Token}
		if !outage {
			c.send(t, speechPCM(t, clips...), false)
		} else {
			c.send(t, speechPCM(t, clips[0]), true)
			waitUntil(t, 60*time.Second, "the first answer in the transcript", func() bool { return len(p.transcript(t, "Acme", id)) > 0 })
			proxy.cut()
			t.Log("bridge cut")
			time.AfterFunc(8*time.Second, func() { proxy.heal(t); t.Log("bridge healed") })
			// The candidate speaks on through the outage and after it.
			c.send(t, speechPCM(t, clips[1:]...), true)
			waitUntil(t, 20*time.Second, "the bridge to heal", func() bool {
				conn, err := net.Dial("tcp", proxy.addr)
				if err == nil {
					conn.Close()
				}
				return err == nil
			})
		}
		var ended apiInterview
		p.call(t, "POST", "/api/v1/interviews/"+id+"/end", key, nil, &ended)
		if ended.Status != "completed" {
			t.Fatalf("end answered %s", ended.Status)
		}
		entries = p.transcript(t, "Acme", id)
		checkSequence(t, entries) // every entry once, seqs dense
		events := p.events(t, "Acme", id)
		if slices.Contains(events, "machine.replaced") || slices.Contains(events, "machine.retired") {
			t.Errorf("events %v: the healthy processor was replaced", events)
		}
		if outage && !slices.Contains(events, "bridge.partitioned") {
			t.Errorf("events %v lack bridge.partitioned: was the bridge cut at all?", events)
		}
		if m := p.interview(t, "Acme", id).Machine; m == nil || m.ID != machine.ID {
			t.Errorf("the interview ended on machine %+v, started on %+v", m, machine)
		}
		return wordRecall(strings.Join(reference, " "), entriesText(entries)), entries, c
	}

	base, baseEntries, _ := interview(false)
	got, entries, c := interview(true)
	t.Logf("word recall: %.2f with no outage (%d entries), %.2f with an 8 s bridge cut (%d entries)", base, len(baseEntries), got, len(entries))
	if len(c.failures) > 0 || c.handOvers > 0 {
		t.Errorf("%d chunk POSTs failed and %d were told to retry during the partition, e.g. %q", len(c.failures), c.handOvers, c.failures)
	}
	// Clip 0880 starts 8.3 s into the audio, when the bridge was cut, and
	// was spoken during the outage: the processor's spool delivers it.
	outageStart := int64(len(speechPCM(t, clips[0]))) * 1000 / (16000 * 2)
	if !slices.ContainsFunc(entries, func(e apiEntry) bool {
		return e.Speaker == "candidate" && e.StartMS >= outageStart-500 && e.StartMS < outageStart+8000
	}) {
		t.Errorf("no candidate entry spoken during the outage (%d–%d ms on the media clock): %+v", outageStart, outageStart+8000, entries)
	}
	if got < base-0.1 {
		t.Errorf("word recall %.2f with the outage, %.2f without: the outage lost speech\noutage: %q\nbase: %q", got, base, candidateText(entries), candidateText(baseEntries))
	}
}

type apiEvent struct {
	Type string
	At   time.Time
}

func (p *plane) timedEvents(t *testing.T, tenant, id string) []apiEvent {
	t.Helper()
	var evs struct{ Events []apiEvent }
	p.call(t, "GET", "/api/v1/interviews/"+id+"/events", p.keys[tenant].Key, nil, &evs)
	return evs.Events
}

// TestAKilledProcessorIsReplacedBehindTheStableURL: SIGKILL of the
// processor mid chunk-interview. The client keeps posting to the start
// answer's URL ({public url}/p/{id}) with the start answer's token and
// gets nothing but 200s, or 503 + Retry-After during the gap; the
// replacement accepts the same token; the transcript goes on with every
// entry once.
func TestAKilledProcessorIsReplacedBehindTheStableURL(t *testing.T) {
	p := startPlane(t, []string{"Acme"}, []string{"--warm-pool=0"}, nil)
	key := p.keys["Acme"].Key
	id := p.schedule(t, "Acme")
	var st apiStart
	p.call(t, "POST", "/api/v1/interviews/"+id+"/start", key, nil, &st)
	if want := p.url + "/p/" + id; st.Processor.URL != want {
		t.Fatalf("processor url %q, want the stable route %q", st.Processor.URL, want)
	}
	first := p.interview(t, "Acme", id).Machine
	c := &chunkClient{p: p, url: st.Processor.URL, token: st.Processor.Token}
	c.send(t, speechPCM(t, "0880", "0890"), false)
	waitUntil(t, 60*time.Second, "entries from the first processor", func() bool {
		return strings.Contains(candidateText(p.transcript(t, "Acme", id)), "selfish")
	})
	before := p.transcript(t, "Acme", id)

	pids := mustGlob(t, filepath.Join(p.dir, "processors", "*.pid"))
	if len(pids) != 1 {
		t.Fatalf("pid files %v, want the one processor", pids)
	}
	pid := processorPID(t, p.dir, strings.TrimSuffix(filepath.Base(pids[0]), ".pid"))
	killed := make(chan time.Time, 1)
	time.AfterFunc(time.Second, func() {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Errorf("kill: %v", err)
		}
		killed <- time.Now()
	})
	// The candidate speaks on, before, through and after the gap.
	c.send(t, speechPCM(t, "0920", "0930"), true)
	killedAt := <-killed
	waitUntil(t, 60*time.Second, "the replacement", func() bool {
		m := p.interview(t, "Acme", id).Machine
		return m != nil && m.ID != first.ID && m.State == "running"
	})
	var again apiStart
	p.call(t, "POST", "/api/v1/interviews/"+id+"/start", key, nil, &again)
	if again.Processor != st.Processor {
		t.Errorf("start answers %+v after the replacement, %+v before: the client's URL and token must not change", again.Processor, st.Processor)
	}
	// And one more answer after the replacement is surely serving.
	c.send(t, speechPCM(t, "0870"), false)
	var ended apiInterview
	p.call(t, "POST", "/api/v1/interviews/"+id+"/end", key, nil, &ended)
	if ended.Status != "completed" {
		t.Fatalf("end answered %s", ended.Status)
	}

	if len(c.failures) > 0 {
		t.Errorf("the client got %d answers other than 200 or 503 + Retry-After: %q", len(c.failures), c.failures)
	}
	if c.handOvers == 0 {
		t.Errorf("the client never saw the hand-over (no 503 + Retry-After): was the processor killed while it sent?")
	}
	entries := p.transcript(t, "Acme", id)
	checkSequence(t, entries) // every entry once, seqs dense
	if len(entries) <= len(before) || !strings.Contains(strings.ToLower(candidateText(entries[len(before):])), "john") {
		t.Errorf("the transcript did not go on after the replacement: %q after %q", candidateText(entries[len(before):]), candidateText(before))
	}
	var retired, replaced time.Time
	for _, ev := range p.timedEvents(t, "Acme", id) {
		switch ev.Type {
		case "machine.retired":
			retired = ev.At
		case "machine.replaced":
			replaced = ev.At
		}
	}
	if retired.IsZero() || replaced.IsZero() {
		t.Fatalf("events %v lack machine.retired/machine.replaced", p.events(t, "Acme", id))
	}
	t.Logf("killed → machine confirmed gone (machine.retired) %s; gone → replacement running (machine.replaced) %s; %d hand-over answers (503 + Retry-After) to the client",
		retired.Sub(killedAt).Round(time.Millisecond), replaced.Sub(retired).Round(time.Millisecond), c.handOvers)
	waitUntil(t, 20*time.Second, "processors to exit", func() bool { return len(processorChildren()) == 0 })
}

// TestARetiredProcessorDeliversItsSpoolOnceAndExits: a partition longer
// than the grace, then healed. The processor's bridge is cut while the
// candidate speaks (it transcribes into its spool), then the processor is
// frozen (SIGSTOP: the control plane's probes go unanswered too) until the
// control plane, after --replace-after, hands the interview to a new
// processor. Then the partition heals (SIGCONT, bridge back): the old
// processor learns it was retired, delivers what it heard before the
// hand-over exactly once, uploads its recording, says drained and exits,
// while the candidate speaks on to the new one. The transcript has every
// entry once under dense seqs and is as complete as with no outage.
func TestARetiredProcessorDeliversItsSpoolOnceAndExits(t *testing.T) {
	p, proxy, proxyURL := proxiedPlane(t, "--replace-after=3s")
	key := p.keys["Acme"].Key
	clips, reference := partitionClips(t)
	direct := func(u string) string { return p.url + strings.TrimPrefix(u, proxyURL) }
	start := func() (string, *chunkClient) {
		id := p.schedule(t, "Acme")
		var st apiStart
		p.call(t, "POST", "/api/v1/interviews/"+id+"/start", key, nil, &st)
		return id, &chunkClient{p: p, url: direct(st.Processor.URL), token: st.Processor.Token}
	}
	end := func(id string) []apiEntry {
		var ended apiInterview
		p.call(t, "POST", "/api/v1/interviews/"+id+"/end", key, nil, &ended)
		if ended.Status != "completed" {
			t.Fatalf("end answered %s", ended.Status)
		}
		entries := p.transcript(t, "Acme", id)
		checkSequence(t, entries) // every entry once, seqs dense
		return entries
	}

	baseID, base := start()
	base.send(t, speechPCM(t, clips...), false)
	baseEntries := end(baseID)

	id, c := start()
	first := p.interview(t, "Acme", id).Machine
	pids := mustGlob(t, filepath.Join(p.dir, "processors", "*.pid"))
	if len(pids) != 1 {
		t.Fatalf("pid files %v, want the one processor", pids)
	}
	pid := processorPID(t, p.dir, strings.TrimSuffix(filepath.Base(pids[0]), ".pid"))
	c.send(t, speechPCM(t, clips[0]), false)
	waitUntil(t, 60*time.Second, "the first answer in the transcript", func() bool { return len(p.transcript(t, "Acme", id)) > 0 })

	// The bridge is cut; the candidate speaks on, and the processor
	// (still reachable from the control plane, so kept) spools.
	proxy.cut()
	c.send(t, speechPCM(t, clips[1]), true)
	// Now unreachable from the control plane too. The proxy carries the
	// bridge of every processor, the replacement's too: it heals now,
	// while the old processor stays cut off by its freeze.
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	proxy.heal(t)
	frozen := true
	defer func() {
		if frozen {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		m := p.interview(t, "Acme", id).Machine
		if m != nil && m.ID != first.ID && m.State == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no replacement within 60 s of the freeze: machine %+v, events %v", m, p.events(t, "Acme", id))
		}
	}
	beforeHeal := p.transcript(t, "Acme", id)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	frozen = false
	t.Log("partition healed")
	c.send(t, speechPCM(t, clips[2:]...), true)
	waitUntil(t, 60*time.Second, "the retired processor to drain and exit", func() bool {
		return pidGone(pid) && slices.Contains(p.events(t, "Acme", id), "processor.drained")
	})
	entries := end(id)

	events := p.events(t, "Acme", id)
	count := func(typ string) int {
		n := 0
		for _, e := range events {
			if e == typ {
				n++
			}
		}
		return n
	}
	if count("machine.replaced") != 1 || count("machine.retired") != 1 || count("processor.drained") != 1 {
		t.Errorf("events %v: want one retirement, one replacement, one drain", events)
	}
	if len(c.failures) > 0 {
		t.Errorf("the client got %d answers other than 200 or 503 + Retry-After: %q", len(c.failures), c.failures)
	}
	// The retired processor's spool: entries it heard before the
	// hand-over that reached the control plane only after the partition.
	late := 0
	for _, e := range entries {
		if e.Speaker == "candidate" && !slices.ContainsFunc(beforeHeal, func(b apiEntry) bool { return b.Seq == e.Seq }) && e.StartMS < int64(len(speechPCM(t, clips[:2]...)))*1000/(16000*2) {
			late++
		}
	}
	if late == 0 {
		t.Errorf("no entry of what the old processor heard arrived after the partition: was anything spooled?\nbefore the heal: %q\nat the end: %q",
			candidateText(beforeHeal), candidateText(entries))
	}
	seen := map[string]bool{}
	for _, e := range entries {
		k := fmt.Sprintf("%d/%s", e.StartMS, e.Text)
		if seen[k] {
			t.Errorf("entry %q at %d ms is in the transcript twice", e.Text, e.StartMS)
		}
		seen[k] = true
	}
	// The retired processor's recording is there too: a part from the
	// start of the media clock holding what it heard, beside the
	// replacement's from the hand-over on.
	var iv struct {
		RecordingParts []struct {
			ContentType string `json:"content_type"`
			StartMS     int64  `json:"start_ms"`
			Bytes       int64
		} `json:"recording_parts"`
	}
	p.call(t, "GET", "/api/v1/interviews/"+id, key, nil, &iv)
	heard := float64(len(speechPCM(t, clips[:2]...))/2) / 16000
	var oldSecs float64
	later := false
	for _, pt := range iv.RecordingParts {
		if pt.ContentType != "audio/wav" {
			continue
		}
		if secs := float64(pt.Bytes-44) / 32000; pt.StartMS < int64(heard*1000) {
			oldSecs += secs
		} else {
			later = true
		}
	}
	if oldSecs < heard-1 || !later {
		t.Errorf("recording parts %+v: want the retired processor's %.1f s from 0 (got %.1f s) and the replacement's after it", iv.RecordingParts, heard, oldSecs)
	}
	recall, baseRecall := wordRecall(strings.Join(reference, " "), entriesText(entries)), wordRecall(strings.Join(reference, " "), entriesText(baseEntries))
	t.Logf("word recall: %.2f with no outage (%d entries), %.2f with the partition and hand-over (%d entries, %d delivered by the retired processor after the heal)",
		baseRecall, len(baseEntries), recall, len(entries), late)
	if recall < baseRecall-0.1 {
		t.Errorf("word recall %.2f with the partition, %.2f without: speech was lost\npartition: %q\nbase: %q", recall, baseRecall, candidateText(entries), candidateText(baseEntries))
	}
}

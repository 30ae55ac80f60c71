package processor

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"candor/processor/media"
	"candor/processor/stt"
	"candor/processor/stt/openaifake"

	"candor/processor/contract"
)

const realtimePlan = `{"position":{"title":"Librarian","description":"Runs the reading room."},
  "questions":["What is your favourite novel?","Who is your favourite author?"],
  "rubric":[{"name":"Love of reading","description":"Talks about books with warmth","weight":2}],
  "interviewer":{"greeting":"Welcome.","closing":"Goodbye.","follow_up":"Please say more."}}`

// startRealtime runs a processor whose interviewer is openai-realtime
// against fake; the candidate is transcribed by the interviewer's session.
func startRealtime(t *testing.T, fake *openaifake.Server, id string, adjust ...func(*Config)) *testProcessor {
	t.Helper()
	control := newFakeControl(t, id, "proc-token")
	dir := t.TempDir()
	planFile := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(planFile, []byte(realtimePlan), 0o600); err != nil {
		t.Fatal(err)
	}
	env := interviewEnv(control, dir)
	delete(env, "CANDOR_STT") // the realtime interviewer's default: it transcribes
	env["CANDOR_PLAN_FILE"] = planFile
	env["CANDOR_INTERVIEWER"] = "openai-realtime"
	env["OPENAI_API_KEY"] = "test-key"
	env["OPENAI_BASE_URL"] = fake.URL
	p := startProcessor(t, control, env, adjust...)
	control.waitEvent(t, "ready")
	return p
}

// eventsReader collects what the candidate page receives on /events.
type eventsReader struct {
	ws      *websocket.Conn
	samples int // interviewer PCM samples received
}

// next returns the next JSON text frame, counting PCM frames on the way.
func (r *eventsReader) next(t *testing.T) map[string]any {
	t.Helper()
	r.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		typ, b, err := r.ws.ReadMessage()
		if err != nil {
			t.Fatalf("read /events: %v", err)
		}
		if typ == websocket.BinaryMessage {
			r.samples += len(b) / 2
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("frame %s: %v", b, err)
		}
		return m
	}
}

// caption reads up to the next caption of speaker.
func (r *eventsReader) caption(t *testing.T, speaker string) string {
	t.Helper()
	for {
		m := r.next(t)
		if m["type"] == "caption" && m["speaker"] == speaker {
			return m["text"].(string)
		}
	}
}

func toneAt(d time.Duration, hz float64) []int16 {
	pcm := make([]int16, int(d.Seconds()*stt.SampleRate))
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*hz*float64(i)/stt.SampleRate))
	}
	return pcm
}

// speak streams pcm over /ws/audio in 100 ms frames at real-time pace.
func speak(t *testing.T, ws *websocket.Conn, pcm []int16) {
	t.Helper()
	const frame = stt.SampleRate / 10
	for off := 0; off < len(pcm); off += frame {
		part := pcm[off:min(off+frame, len(pcm))]
		b := make([]byte, 2*len(part))
		for i, v := range part {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
		}
		if err := ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
			t.Fatalf("write /ws/audio: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func dialAudio(t *testing.T, p *testProcessor) *websocket.Conn {
	t.Helper()
	u := strings.Replace(p.url, "http://", "ws://", 1) + "/ws/audio?token=" + p.control.token
	ws, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial /ws/audio: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// waitMedia waits until a heartbeat reports at least ms of candidate audio.
func waitMedia(t *testing.T, c *fakeControl, ms int64) {
	t.Helper()
	c.waitFor(t, "the media clock to reach the audio sent", func() bool {
		for _, ev := range c.events {
			if ev.Type == "heartbeat" && *ev.MediaMS >= ms {
				return true
			}
		}
		return false
	})
}

func speakersAndTexts(es []contract.Entry) (speakers, texts []string) {
	for _, e := range es {
		speakers = append(speakers, e.Speaker)
		texts = append(texts, e.Text)
	}
	return speakers, texts
}

func TestRealtimeInterviewerHoldsThePlannedConversation(t *testing.T) {
	replies := []string{"Welcome. What is your favourite novel?", "Thanks. Who is your favourite author?", "Goodbye."}
	fake := openaifake.New(openaifake.Options{
		Reply:         func(n int, _ string) string { return replies[min(n, len(replies)-1)] },
		SpeechPerChar: 10 * time.Millisecond,
		// The first answer's transcript arrives after the model has answered
		// it: entries must still come out in conversation order.
		TranscriptionDelay: func(n int) time.Duration {
			if n == 0 {
				return 400 * time.Millisecond
			}
			return 0
		},
	})
	defer fake.Close()
	p := startRealtime(t, fake, "iv_rt")
	ev := &eventsReader{ws: dialEvents(t, p, contract.CandidateToken(p.control.token, p.control.interviewID))}
	defer ev.ws.Close()

	if got := ev.caption(t, "interviewer"); got != replies[0] {
		t.Fatalf("first interviewer caption %q, want %q", got, replies[0])
	}
	ss := fake.Sessions()[0]
	ins := ss.Instructions()
	for _, want := range []string{"Librarian", "Runs the reading room.", "1. What is your favourite novel?", "2. Who is your favourite author?", "Love of reading", "Welcome.", "Goodbye."} {
		if !strings.Contains(ins, want) {
			t.Errorf("instructions lack %q:\n%s", want, ins)
		}
	}
	if strings.Index(ins, "favourite novel") > strings.Index(ins, "favourite author") {
		t.Errorf("questions out of order in the instructions:\n%s", ins)
	}
	b, _ := json.Marshal(ss.Config["audio"])
	for _, want := range []string{`"type":"audio/pcm"`, `"rate":24000`, `"type":"server_vad"`, `"model":"gpt-4o-transcribe"`, `"voice":"alloy"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("session audio config %s lacks %s", b, want)
		}
	}

	audio := dialAudio(t, p)
	// Each reply is under 400 ms of speech relayed in real time; the
	// generous pauses keep a loaded machine from turning a late reply into
	// a barge-in, which this test is not about.
	time.Sleep(1500 * time.Millisecond)
	var sent []int16
	for _, hz := range []float64{400, 600} {
		turn := append(toneAt(600*time.Millisecond, hz), make([]int16, stt.SampleRate)...)
		speak(t, audio, turn)
		sent = append(sent, turn...)
		time.Sleep(1500 * time.Millisecond)
	}
	waitMedia(t, p.control, int64(len(sent))*1000/stt.SampleRate)
	p.control.waitFor(t, "five entries", func() bool { return len(p.control.entries) >= 5 })
	p.end(t)

	es := p.control.Entries()
	speakers, texts := speakersAndTexts(es)
	wantSpeakers := []string{"interviewer", "candidate", "interviewer", "candidate", "interviewer"}
	wantTexts := []string{replies[0], "tone 400", replies[1], "tone 600", replies[2]}
	if !slices.Equal(speakers, wantSpeakers) || !slices.Equal(texts, wantTexts) {
		t.Fatalf("entries %q by %q, want %q by %q", texts, speakers, wantTexts, wantSpeakers)
	}
	checkDenseSeqs(t, es, 1)
	for i := 1; i < len(es); i++ {
		if es[i].StartMS < es[i-1].StartMS {
			t.Errorf("entry %d starts at %d ms, before entry %d (%d ms)", i+1, es[i].StartMS, i, es[i-1].StartMS)
		}
	}
	if c := es[1]; c.EndMS-c.StartMS < 500 || c.EndMS-c.StartMS > 1200 {
		t.Errorf("candidate entry spans %d..%d ms; the tone lasted 600 ms", c.StartMS, c.EndMS)
	}
	// The greeting was relayed as 16 kHz PCM: 38 characters of 10 ms.
	if want := len(replies[0]) * 10 * stt.SampleRate / 1000; ev.samples < want-2 || ev.samples > want+2 {
		t.Errorf("/events carried %d samples of interviewer speech before the first caption's end, want about %d", ev.samples, want)
	}
}

func TestRealtimeInterviewerStopsWhenTheCandidateBargesIn(t *testing.T) {
	long := strings.Repeat("Let me tell you about this position at some length. ", 3)
	fake := openaifake.New(openaifake.Options{
		Reply:         func(n int, _ string) string { return long },
		SpeechPerChar: 40 * time.Millisecond,  // about six seconds
		AudioPace:     100 * time.Millisecond, // generated in real time
	})
	defer fake.Close()
	p := startRealtime(t, fake, "iv_barge")
	ev := &eventsReader{ws: dialEvents(t, p, contract.CandidateToken(p.control.token, p.control.interviewID))}
	defer ev.ws.Close()
	audio := dialAudio(t, p)

	// Wait for the interviewer's speech, then talk over it.
	ev.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for ev.samples < stt.SampleRate/2 {
		typ, b, err := ev.ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if typ == websocket.BinaryMessage {
			ev.samples += len(b) / 2
		}
	}
	spoke := make(chan struct{})
	go func() {
		defer close(spoke)
		const frame = stt.SampleRate / 10
		pcm := append(toneAt(500*time.Millisecond, 500), make([]int16, stt.SampleRate)...)
		for off := 0; off < len(pcm); off += frame {
			b := make([]byte, 2*frame)
			for i, v := range pcm[off:min(off+frame, len(pcm))] {
				binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
			}
			if audio.WriteMessage(websocket.BinaryMessage, b) != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	defer func() { <-spoke }()
	for {
		m := ev.next(t)
		if m["type"] == "interrupt" {
			break
		}
	}
	p.control.waitFor(t, "the interrupted turn's entry", func() bool { return len(p.control.entries) >= 1 })
	p.end(t)

	ss := fake.Sessions()[0]
	if len(ss.Truncations) != 1 || ss.Cancels < 1 {
		t.Fatalf("truncations %+v, cancels %d: want one truncate and a response.cancel", ss.Truncations, ss.Cancels)
	}
	tr := ss.Truncations[0]
	full := int64(len(long)) * 40
	if tr.AudioEndMS <= 0 || tr.AudioEndMS >= full || tr.ItemID != ss.Items[0].ID {
		t.Errorf("truncate %+v of item %s: want the first answer cut inside its %d ms", tr, ss.Items[0].ID, full)
	}
	if got := int64(ev.samples) * 1000 / stt.SampleRate; got >= full {
		t.Errorf("the page received %d ms of speech; the relay should stop at the barge-in", got)
	}
	es := p.control.Entries()
	if len(es) == 0 || es[0].Speaker != "interviewer" || es[0].EndMS-es[0].StartMS >= full || es[0].EndMS-es[0].StartMS > tr.AudioEndMS+200 {
		t.Errorf("entries %+v: the interrupted turn should span what was played (%d ms)", es, tr.AudioEndMS)
	}
}

func TestRealtimeInterviewerRollsOverWithoutLosingAudio(t *testing.T) {
	fake := openaifake.New(openaifake.Options{
		Reply: func(n int, _ string) string {
			return []string{"Hello there.", "Next one.", "And again.", "More please."}[min(n, 3)]
		},
		SpeechPerChar: 10 * time.Millisecond,
	})
	defer fake.Close()
	p := startRealtime(t, fake, "iv_roll", func(c *Config) { c.RealtimeSessionMax = 1200 * time.Millisecond })
	ev := &eventsReader{ws: dialEvents(t, p, contract.CandidateToken(p.control.token, p.control.interviewID))}
	defer ev.ws.Close()
	ev.caption(t, "interviewer")
	audio := dialAudio(t, p)
	time.Sleep(300 * time.Millisecond)

	var sent []int16
	for _, hz := range []float64{400, 600, 800} {
		turn := append(toneAt(500*time.Millisecond, hz), make([]int16, stt.SampleRate)...)
		speak(t, audio, turn)
		sent = append(sent, turn...)
		time.Sleep(300 * time.Millisecond)
	}
	waitMedia(t, p.control, int64(len(sent))*1000/stt.SampleRate)
	p.end(t)

	// The end has sent every session's close frame; the fake reads the
	// last one on its own goroutine, maybe just after /end answered.
	sessions := fake.Sessions()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !slices.ContainsFunc(sessions, func(ss openaifake.Session) bool { return !ss.ClosedClean }) {
			break
		}
		sessions = fake.Sessions()
	}
	if len(sessions) < 2 {
		t.Fatalf("%d sessions: want a rollover past the 1.2 s cap", len(sessions))
	}
	var appended int
	for i, ss := range sessions {
		appended += len(ss.Audio)
		if !ss.ClosedClean {
			t.Errorf("session %d was not closed cleanly", i+1)
		}
		if ss.Expired {
			t.Errorf("session %d expired", i+1)
		}
	}
	if want := len(media.Resample(sent, stt.SampleRate, openaifake.Rate)); appended != want {
		t.Errorf("%d samples appended across %d sessions, want %d (the 24 kHz form of all audio sent)", appended, len(sessions), want)
	}
	carried := sessions[1].Instructions()
	if !strings.Contains(carried, "Interviewer: Hello there.") || !strings.Contains(carried, "Candidate: tone 400") || !strings.Contains(carried, "What is your favourite novel?") {
		t.Errorf("the second session's instructions do not carry the conversation over:\n%s", carried)
	}
	if sessions[1].ResponseCreates != 0 {
		t.Errorf("the rolled-over session was asked to speak first (%d response.create)", sessions[1].ResponseCreates)
	}
	_, texts := speakersAndTexts(p.control.Entries())
	for _, want := range []string{"tone 400", "tone 600", "tone 800"} {
		if !slices.Contains(texts, want) {
			t.Errorf("entries %q lack the candidate's %q", texts, want)
		}
	}
}

func TestResumeFromPlacesAReplacementInThePlan(t *testing.T) {
	plan := contract.Plan{Questions: []string{"Q1?", "Q2?", "Q3?"}, Interviewer: contract.PlanInterviewer{Greeting: "Hi.", FollowUp: "More?", Closing: "Bye."}}.WithDefaults()
	tests := []struct {
		name string
		st   contract.State
		want Resume
	}{
		{"a state with nothing said starts over", contract.State{LastSeq: 4}, Resume{}},
		{"texts place it after the last question asked, follow-ups aside", contract.State{InterviewerTexts: []string{"Hi.", "Q1?", "More?", "Q2?", "More?"}},
			Resume{Turns: 5, Asked: 2, Said: []string{"Hi.", "Q1?", "More?", "Q2?", "More?"}}},
		{"the closing among the texts means nothing is left to say", contract.State{InterviewerTexts: []string{"Hi.", "Q1?", "Q2?", "Q3?", "Bye."}},
			Resume{Turns: 5, Asked: 3, Closed: true, Said: []string{"Hi.", "Q1?", "Q2?", "Q3?", "Bye."}}},
		{"a count alone assumes the greeting then one question a turn", contract.State{InterviewerTurns: 3}, Resume{Turns: 3, Asked: 2}},
		{"a count past the questions means closed", contract.State{InterviewerTurns: 5}, Resume{Turns: 5, Asked: 3, Closed: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := resumeFrom(plan, tt.st)
			if got.Turns != tt.want.Turns || got.Asked != tt.want.Asked || got.Closed != tt.want.Closed || !slices.Equal(got.Said, tt.want.Said) {
				t.Fatalf("resumeFrom = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAReplacementScriptedInterviewerResumesInsteadOfGreeting(t *testing.T) {
	control := newFakeControl(t, "iv_resume", "proc-token")
	control.interviewerTexts = []string{"Welcome.", "What is your favourite novel?"}
	dir := t.TempDir()
	planFile := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(planFile, []byte(realtimePlan), 0o600); err != nil {
		t.Fatal(err)
	}
	env := interviewEnv(control, dir)
	env["CANDOR_PLAN_FILE"] = planFile
	p := startProcessor(t, control, env)
	control.waitEvent(t, "ready")
	ev := &eventsReader{ws: dialEvents(t, p, contract.CandidateToken(control.token, control.interviewID))}
	defer ev.ws.Close()
	if got := ev.caption(t, "interviewer"); got != "Who is your favourite author?" {
		t.Fatalf("a replacement said %q first, want the next question", got)
	}
}

package views

import (
	"encoding/json"
	"strings"

	"candor/store"
)

// EventSummary says in words what an interview event means to a recruiter
// ("Machine started in iad", "Candidate joined"). The raw data stays
// available on demand; ids, URLs and user agents are not words for people.
// The realtime message and GET …/events carry the same text, so the live
// timeline and the rendered one read alike.
func EventSummary(e store.Event) string {
	var d map[string]any
	_ = json.Unmarshal(e.Data, &d)
	str := func(k string) string {
		s, _ := d[k].(string)
		return s
	}
	in := func(region string) string {
		if region == "" || region == "local" {
			return " on this server"
		}
		return " in " + region
	}
	switch e.Type {
	case "candidate.consented":
		return "Candidate agreed to recording and AI processing"
	case "candidate.joined":
		return "Candidate joined"
	case "invitation.sent":
		return "Invitation emailed to the candidate"
	case "reminder.sent":
		return "Reminder emailed to the candidate"
	case "candidate.ended":
		return "Candidate ended the interview"
	case "machine.launched":
		return "Machine started" + in(str("region"))
	case "processor.ready":
		return "Interviewer ready"
	case "processor.finished":
		return "The candidate stayed silent after the closing line; the interview was ended for them"
	case "processor.ended":
		return "Interviewer finished and delivered the transcript"
	case "heartbeat.lost":
		return "Lost contact with the machine; checking on it"
	case "machine.replaced":
		if r := str("reason"); r != "" {
			return "Machine replaced (" + r + "); the interview continued"
		}
		return "Machine replaced; the interview continued"
	case "machine.vanished":
		return "Machine disappeared"
	case "machine.orphan_destroyed":
		return "Leftover machine cleaned up"
	case "interview.ended":
		return "Interview ended"
	case "interview.cancelled":
		return "Interview cancelled"
	case "interview.retried":
		return "Launch retried"
	case "interview.started":
		return "Interview started"
	case "interview.completed":
		return "Interview completed"
	case "interview.failed":
		return "Interview failed"
	case "recording.stored":
		return "Recording saved"
	case "video.stored":
		return "Camera video saved"
	case "error":
		if m := str("message"); m != "" {
			return "Problem: " + m
		}
		return "Problem reported"
	}
	// An event type this version does not know: its name, readable.
	s := strings.NewReplacer(".", " ", "_", " ").Replace(e.Type)
	if s == "" {
		return "Event"
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

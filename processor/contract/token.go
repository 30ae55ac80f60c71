package contract

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// CandidateToken is what the candidate page presents to an interview's
// processor: hex(HMAC-SHA256(key=processor token, msg="candidate:"+interview
// id)). The control plane hands it to the candidate page; the processor
// derives the same value from its own CANDOR_PROCESSOR_TOKEN. It opens every
// processor endpoint but /end.
func CandidateToken(processorToken, interviewID string) string {
	m := hmac.New(sha256.New, []byte(processorToken))
	m.Write([]byte("candidate:" + interviewID))
	return hex.EncodeToString(m.Sum(nil))
}

package contract

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// CandidateToken is what the candidate page presents to an interview's
// processor: hex(HMAC-SHA256(key=client token, msg="candidate:"+interview
// id)). The control plane hands it to the candidate page; the processor
// derives the same value from its CANDOR_CLIENT_TOKEN (the interview's, not
// the machine's, so it survives a replacement). It opens every processor
// endpoint but the processor-only ones (/end).
func CandidateToken(clientToken, interviewID string) string {
	m := hmac.New(sha256.New, []byte(clientToken))
	m.Write([]byte("candidate:" + interviewID))
	return hex.EncodeToString(m.Sum(nil))
}

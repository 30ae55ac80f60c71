package mailtest

import (
	"encoding/base64"
	"io"
	"strings"
)

// newBase64Reader decodes a base64 body broken into lines.
func newBase64Reader(r io.Reader) io.Reader {
	return base64.NewDecoder(base64.StdEncoding, &stripNewlines{r: r})
}

type stripNewlines struct{ r io.Reader }

func (s *stripNewlines) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	out := strings.NewReplacer("\r", "", "\n", "").Replace(string(p[:n]))
	return copy(p, out), err
}

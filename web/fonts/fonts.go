// Package fonts embeds DejaVu Sans (regular and bold) for the PDF report:
// PDF's core fonts cover cp1252 only, and candidates' names and words come
// in any script. The fonts' licence (bitstream-vera, in LICENSE next to
// them) allows redistribution inside a larger program with the notice kept;
// embedding them means the binary and its Docker image need no font package.
package fonts

import _ "embed"

//go:embed DejaVuSans.ttf
var Sans []byte

//go:embed DejaVuSans-Bold.ttf
var SansBold []byte

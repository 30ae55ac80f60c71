// Package migrations holds Candor's schema as numbered SQL files, applied in
// order by store.Open.
package migrations

import "embed"

// FS holds every NNNN_name.sql file of this directory.
//
//go:embed *.sql
var FS embed.FS

// Package migrations embeds the portal's schema migrations, applied at start
// by golang-migrate through store.Migrate. Files are NNNN_name.up.sql and
// NNNN_name.down.sql; never edit one that has shipped, add a new one.
package migrations

import "embed"

// FS holds the migration files.
//
//go:embed *.sql
var FS embed.FS

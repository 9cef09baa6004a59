package main

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/connkit/connkit/apisync"
	"github.com/connkit/connkit/sqlstore"
)

// The partner part needs no Go code: two apisync configs (apisync/*.yaml) expose an
// inbound endpoint for partner records and push partners to the CRM as companies.
//
// It keeps its records, bindings and jobs in a SQLite file of its own, next to -db:
// apisync runs its jobs on a River queue in its database, and two River queues sharing one
// database (this one and the connector's, see connector.go) would each pick up the
// other's jobs and cancel them as meant for another backend.

//go:embed apisync/*.yaml
var partnerConfigs embed.FS

// Names of the partner configs.
const (
	partnersEndpoint = "partners-endpoint"
	partnersToCRM    = "partners-to-crm"
)

// partnersDBPath is the partner part's database next to the connector's: crm.db →
// crm.partners.db.
func partnersDBPath(dbPath string) string {
	return strings.TrimSuffix(dbPath, path.Ext(dbPath)) + ".partners.db"
}

// loadPartnerConfigs parses the embedded configs, expanding ${VAR} with lookup.
func loadPartnerConfigs(lookup func(string) (string, bool)) ([]apisync.Config, error) {
	files, err := fs.Glob(partnerConfigs, "apisync/*.yaml")
	if err != nil {
		return nil, err
	}
	var cfgs []apisync.Config
	for _, f := range files {
		data, err := partnerConfigs.ReadFile(f)
		if err != nil {
			return nil, err
		}
		c, err := apisync.Parse(data, f, lookup)
		if err != nil {
			return nil, err
		}
		cfgs = append(cfgs, c)
	}
	if err := apisync.ValidateAll(cfgs); err != nil {
		return nil, err
	}
	return cfgs, nil
}

// openPartners opens the partner configs on their database.
func openPartners(ctx context.Context, dbPath string, lookup func(string) (string, bool)) (*apisync.Sync, *sqlstore.DB, error) {
	cfgs, err := loadPartnerConfigs(lookup)
	if err != nil {
		return nil, nil, fmt.Errorf("partner configs: %w", err)
	}
	db, err := sqlstore.Open(ctx, dbPath)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the partner database %s: %w", dbPath, err)
	}
	s, err := apisync.Open(ctx, db, cfgs)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return s, db, nil
}

package main

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/connkit/connkit/apisync"
	"github.com/connkit/connkit/sqlstore"
)

// The partner part needs no Go code: two apisync configs (apisync/*.yaml) expose an
// inbound endpoint for partner records and push partners to the CRM as companies.
// They keep their records, bindings and jobs in the connector's database: apisync's jobs
// and the connector's go to River queues of their own there.

//go:embed apisync/*.yaml
var partnerConfigs embed.FS

// Names of the partner configs.
const (
	partnersEndpoint = "partners-endpoint"
	partnersToCRM    = "partners-to-crm"
)

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

// openPartners opens the partner configs on the connector's database.
func openPartners(ctx context.Context, db *sqlstore.DB, lookup func(string) (string, bool)) (*apisync.Sync, error) {
	cfgs, err := loadPartnerConfigs(lookup)
	if err != nil {
		return nil, fmt.Errorf("partner configs: %w", err)
	}
	return apisync.Open(ctx, db, cfgs)
}

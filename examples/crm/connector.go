package main

import (
	"context"
	"net/url"
	"time"

	"github.com/riverqueue/river"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/apisync"
	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/mapper"
	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/queue/riverqueue"
	"github.com/connkit/connkit/sqlstore"
)

// Company is the app's company record.
type Company struct {
	Name     string `json:"name"`
	Domain   string `json:"domain,omitempty"`
	Industry string `json:"industry,omitempty"`
}

// Contact is the app's contact record. CompanyID is the local ID of the contact's
// company.
type Contact struct {
	Email     string `json:"email"`
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	Phone     string `json:"phone,omitempty"`
	Stage     string `json:"stage,omitempty"`
	CompanyID string `json:"company_id,omitempty"`
}

// Paths and listing parameters of the CRM's objects API. A listing names the properties
// it needs (HubSpot returns only a few by default) and asks for the associations.
const (
	companiesPath = "/crm/v3/objects/companies"
	contactsPath  = "/crm/v3/objects/contacts"
	pageSize      = "100" // HubSpot's maximum
)

var (
	companyQuery = url.Values{"limit": {pageSize}, "properties": {"name,domain,industry"}}
	contactQuery = url.Values{"limit": {pageSize}, "properties": {"email,firstname,lastname,phone,lifecyclestage"},
		"associations": {"companies"}}
)

// app is the connector and the app's records it syncs: one database, one backend, one
// declaration per model.
type app struct {
	db        *sqlstore.DB
	crm       *backend.Backend
	companies *sqlstore.RecordStore[Company]
	contacts  *sqlstore.RecordStore[Contact]
	// partners are the apisync configs of the partner endpoint and push (partners.go).
	partners *apisync.Sync
}

// newApp builds the connector on db from cfg. opts are added after the connector's own
// (a logger, a clock in tests).
func newApp(ctx context.Context, cfg backend.Config, db *sqlstore.DB, opts ...backend.Option) (*app, error) {
	companies, err := sqlstore.Records[Company](ctx, db, "company")
	if err != nil {
		return nil, err
	}
	contacts, err := sqlstore.Records[Contact](ctx, db, "contact")
	if err != nil {
		return nil, err
	}
	crm, err := backend.New(cfg, append([]backend.Option{
		backend.WithDB(db), // bindings, statistics and the audit log next to the app's records
		backend.WithQueue(func(ctx context.Context, w *queue.Workers) (queue.Queue, error) {
			// Exports the app asks for are jobs in the same SQLite file: durable, and
			// enqueued in the transaction that changes the record (see app.go). A failed
			// export is retried after 1 s, 2 s, 4 s… up to 10 minutes apart.
			return riverqueue.New(ctx, db, w, queue.WithBackoff(time.Second, 10*time.Minute),
				riverqueue.WithRiverConfig(func(c *river.Config) { c.FetchPollInterval = 100 * time.Millisecond }))
		}),
		backend.WithModel(companyModel(companies)),
		backend.WithModel(contactModel(contacts)),
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	return &app{db: db, crm: crm, companies: companies, contacts: contacts}, nil
}

// The CRM's paging: the cursor of the next page is paging.next.after in each page's body,
// sent back as ?after=; the last page has no paging.
var cursor = adapter.Cursor("paging.next.after", "after")

// companyModel declares the company model, kept in store.
func companyModel(store local.Store[Company]) backend.Model[Company] {
	return backend.Model[Company]{
		Name: "company", Local: store,
		UpdatedAtPath: "updatedAt",
		Import: &backend.Import{
			List:  adapter.Request{Path: companiesPath, Query: companyQuery},
			Pages: cursor, Records: "results",
			Fetch: companiesPath + "/{id}?" + companyQuery.Encode(),
			Rules: []mapper.Rule{
				mapper.Direct("properties.name", "name", mapper.Trim()),
				mapper.Direct("properties.domain", "domain", mapper.Trim(), mapper.Lower()),
				mapper.Direct("properties.industry", "industry"),
			},
		},
		Export: &backend.Export{
			Create: companiesPath, Update: companiesPath + "/{id}", Method: "PATCH",
			Rules: []mapper.Rule{
				mapper.Direct("name", "properties.name", mapper.Required()),
				mapper.Direct("domain", "properties.domain"),
				mapper.Direct("industry", "properties.industry"),
			},
		},
	}
}

// contactModel declares the contact model, kept in store.
func contactModel(store local.Store[Contact]) backend.Model[Contact] {
	return backend.Model[Contact]{
		Name: "contact", Local: store,
		UpdatedAtPath: "updatedAt",
		Import: &backend.Import{
			List:  adapter.Request{Path: contactsPath, Query: contactQuery},
			Pages: cursor, Records: "results",
			Fetch: contactsPath + "/{id}?" + contactQuery.Encode(),
			Rules: []mapper.Rule{
				mapper.Direct("properties.email", "email", mapper.Trim(), mapper.Lower(), mapper.Required()),
				mapper.Direct("properties.firstname", "first_name"),
				mapper.Direct("properties.lastname", "last_name"),
				mapper.Direct("properties.phone", "phone"),
				mapper.Direct("properties.lifecyclestage", "stage"),
				// The contact's (first) company: companies import first, and one the
				// listing has not brought yet is fetched on the way.
				mapper.Relation("associations.companies.results.0.id", "company_id", "company"),
			},
		},
		Export: &backend.Export{
			// New contacts are POSTed, edits PATCHed; the answer's updatedAt is kept, so the
			// next import sees the write as already synced.
			Create: contactsPath, Update: contactsPath + "/{id}", Method: "PATCH",
			Rules: []mapper.Rule{
				mapper.Direct("email", "properties.email", mapper.Required()),
				mapper.Direct("first_name", "properties.firstname"),
				mapper.Direct("last_name", "properties.lastname"),
				mapper.Direct("phone", "properties.phone"),
				mapper.Direct("stage", "properties.lifecyclestage"),
				// Not sent: the company association. HubSpot takes it in the create body
				// ("associations": [{"to": {"id": …}, "types": […]}]), but a contact without a
				// company must then have no such entry, and an export rule cannot leave it out
				// (a Relation on an empty company_id writes null, which HubSpot refuses).
			},
		},
	}
}

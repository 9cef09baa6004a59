package main

import (
	"context"
	_ "embed"
	"net/url"
	"time"

	"github.com/riverqueue/river"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/mapper"
	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/queue/riverqueue"
	"github.com/connkit/connkit/sqlstore"
)

// shopConfig is the connector's configuration: the shop's URL and token come from the
// environment (SHOPIFY_BASE_URL, SHOPIFY_TOKEN), never from the file.
//
//go:embed shop.yaml
var shopConfig []byte

// The app's own records, kept by sqlstore.Records in the connector's SQLite file. A real
// app has its own tables; connkit reads and writes them through local.Store.
type (
	// Product is a catalogue item with its variants as lines.
	Product struct {
		Title       string    `json:"title"`
		Description string    `json:"description"`
		Vendor      string    `json:"vendor"`
		Type        string    `json:"product_type"`
		Status      string    `json:"status"`
		Tags        string    `json:"tags"`
		Variants    []Variant `json:"variants"`
	}
	// Variant is one sellable version of a product. ShopifyID is the shop's variant ID
	// ("" until the product was exported and imported back).
	Variant struct {
		ShopifyID string `json:"shopify_id"`
		Title     string `json:"title"`
		SKU       string `json:"sku"`
		Price     string `json:"price"`
		Inventory int64  `json:"inventory"`
	}
	// Customer is a person who may order.
	Customer struct {
		Email     string `json:"email"`
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
		Phone     string `json:"phone"`
		State     string `json:"state"`
		Tags      string `json:"tags"`
	}
	// Order is a checkout. CustomerID is the local customer ("" for a guest checkout);
	// ProductIDs the local products its lines refer to (a line whose product was deleted,
	// or a custom line, refers to none and is left out).
	Order struct {
		Number            string      `json:"number"`
		Email             string      `json:"email"`
		CustomerID        string      `json:"customer_id"`
		FinancialStatus   string      `json:"financial_status"`
		FulfillmentStatus string      `json:"fulfillment_status"`
		Total             string      `json:"total"`
		Currency          string      `json:"currency"`
		PlacedAt          time.Time   `json:"placed_at"`
		ProductIDs        []string    `json:"product_ids"`
		Lines             []OrderLine `json:"lines"`
	}
	// OrderLine is one line of an order. VariantID is the shop's variant ID.
	OrderLine struct {
		VariantID string `json:"variant_id"`
		SKU       string `json:"sku"`
		Title     string `json:"title"`
		Quantity  int64  `json:"quantity"`
		Price     string `json:"price"`
	}
)

// connector is the backend and the app's stores it syncs.
type connector struct {
	shop      *backend.Backend
	products  *sqlstore.RecordStore[Product]
	customers *sqlstore.RecordStore[Customer]
	orders    *sqlstore.RecordStore[Order]
}

// pageSize is the largest page the REST Admin API serves.
var pageSize = url.Values{"limit": {"250"}}

// newConnector builds the Shopify connector on db: one backend, one declaration per
// model. lookup resolves the ${VAR}s of the configuration.
func newConnector(ctx context.Context, db *sqlstore.DB, lookup func(string) (string, bool), opts ...backend.Option) (*connector, error) {
	cfg, err := backend.ParseConfig(shopConfig, lookup)
	if err != nil {
		return nil, err
	}
	c := &connector{}
	if c.products, err = sqlstore.Records[Product](ctx, db, "product"); err != nil {
		return nil, err
	}
	if c.customers, err = sqlstore.Records[Customer](ctx, db, "customer"); err != nil {
		return nil, err
	}
	if c.orders, err = sqlstore.Records[Order](ctx, db, "order"); err != nil {
		return nil, err
	}

	variantIn, err := mapper.NewImport("variant", []mapper.Rule{
		mapper.Direct("id", "shopify_id", mapper.String()),
		mapper.Direct("title", "title"),
		mapper.Direct("sku", "sku", mapper.Trim()),
		mapper.Direct("price", "price", mapper.String()),
		mapper.Direct("inventory_quantity", "inventory", mapper.Int(), mapper.Default(int64(0))),
	})
	if err != nil {
		return nil, err
	}
	variantOut, err := mapper.NewExport("variant", []mapper.Rule{
		// A variant the shop does not know yet has no ID: leave "id" out so it is created.
		mapper.Func("id", func(_ context.Context, r *mapper.Record) (mapper.Values, error) {
			if id, _, _ := r.Get("shopify_id"); id != nil && id != "" {
				return mapper.Values{"id": id}, nil
			}
			return nil, nil
		}),
		mapper.Direct("title", "title"),
		mapper.Direct("sku", "sku"),
		mapper.Direct("price", "price"),
	})
	if err != nil {
		return nil, err
	}
	lineIn, err := mapper.NewImport("order_line", []mapper.Rule{
		mapper.Direct("variant_id", "variant_id", mapper.String()),
		mapper.Direct("sku", "sku"),
		mapper.Direct("title", "title"),
		mapper.Direct("quantity", "quantity", mapper.Int()),
		mapper.Direct("price", "price", mapper.String()),
	})
	if err != nil {
		return nil, err
	}

	opts = append([]backend.Option{
		backend.WithDB(db), // bindings, watermarks, statistics and the audit log in the same file
		backend.WithQueue(func(ctx context.Context, w *queue.Workers) (queue.Queue, error) {
			return riverqueue.New(ctx, db, w, riverqueue.WithRiverConfig(func(rc *river.Config) {
				rc.FetchPollInterval = 100 * time.Millisecond // deferred exports start quickly
			}))
		}),
		backend.WithConnectionTest(func(ctx context.Context, b *backend.Backend) error {
			_, err := b.Client().Do(ctx, &adapter.Request{Path: "/shop.json", Operation: "test_connection"})
			return err
		}),
		backend.WithModel(backend.Model[Product]{
			Name:  "product",
			Local: c.products,
			Import: &backend.Import{
				// Oldest change first, so the watermark of the incremental sync is exact.
				List:    adapter.Request{Path: "/products.json", Query: with(pageSize, "order", "updated_at asc")},
				Pages:   adapter.LinkHeader(), // page_info cursors in the Link header
				Records: "products", Since: "updated_at_min",
				Fetch: "/products/{id}.json", Record: "product",
				Rules: []mapper.Rule{
					mapper.Direct("title", "title", mapper.Trim(), mapper.Required()),
					mapper.Direct("body_html", "description"),
					mapper.Direct("vendor", "vendor"),
					mapper.Direct("product_type", "product_type"),
					mapper.Direct("status", "status"),
					mapper.Direct("tags", "tags"),
					mapper.Children("variants", "variants", variantIn),
				},
			},
			Export: &backend.Export{
				Create: "/products.json", Update: "/products/{id}.json", Record: "product",
				Rules: []mapper.Rule{
					mapper.Direct("title", "product.title"),
					mapper.Direct("description", "product.body_html"),
					mapper.Direct("vendor", "product.vendor"),
					mapper.Direct("product_type", "product.product_type"),
					mapper.Direct("status", "product.status"),
					mapper.Direct("tags", "product.tags"),
					mapper.Children("variants", "product.variants", variantOut),
				},
			},
		}),
		backend.WithModel(backend.Model[Customer]{
			Name:  "customer",
			Local: c.customers,
			Import: &backend.Import{
				List:    adapter.Request{Path: "/customers.json", Query: with(pageSize, "order", "updated_at asc")},
				Records: "customers", Since: "updated_at_min",
				Fetch: "/customers/{id}.json", Record: "customer",
				Rules: []mapper.Rule{
					mapper.Direct("email", "email", mapper.Trim(), mapper.Lower()),
					mapper.Direct("first_name", "first_name"),
					mapper.Direct("last_name", "last_name"),
					mapper.Direct("phone", "phone"),
					mapper.Direct("state", "state"),
					mapper.Direct("tags", "tags"),
				},
			},
		}),
		backend.WithModel(backend.Model[Order]{
			Name:  "order",
			Local: c.orders,
			Import: &backend.Import{
				// status=any: without it the API lists open orders only.
				List:    adapter.Request{Path: "/orders.json", Query: with(pageSize, "order", "updated_at asc", "status", "any")},
				Records: "orders", Since: "updated_at_min",
				Fetch: "/orders/{id}.json", Record: "order",
				Rules: []mapper.Rule{
					mapper.Direct("name", "number", mapper.Required()),
					mapper.Direct("email", "email", mapper.Trim(), mapper.Lower()),
					// Relations are the dependencies: customers and products sync first, and
					// one that is still missing is fetched on the way. A guest checkout has
					// "customer": null, which maps to no customer.
					mapper.Relation("customer.id", "customer_id", "customer"),
					mapper.Relation("line_items.#.product_id", "product_ids", "product"),
					mapper.Direct("financial_status", "financial_status"),
					mapper.Direct("fulfillment_status", "fulfillment_status"),
					mapper.Direct("total_price", "total", mapper.String()),
					mapper.Direct("currency", "currency"),
					mapper.Direct("processed_at", "placed_at", mapper.Time()),
					mapper.Children("line_items", "lines", lineIn),
				},
			},
		}),
	}, opts...)
	if c.shop, err = backend.New(cfg, opts...); err != nil {
		return nil, err
	}
	return c, nil
}

// with returns a copy of q with the key/value pairs added.
func with(q url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

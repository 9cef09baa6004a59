package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"

	"github.com/connkit/connkit/sqlstore"
)

// Keep the app's products in the connkit database: no SQL to write. The store is a
// local.Store[Product] and local.KeyedCreator[Product], ready for the importer.
func ExampleRecords() {
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, ":memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	type Product struct {
		SKU   string  `json:"sku"`
		Price float64 `json:"price"`
	}
	products, err := sqlstore.Records[Product](ctx, db, "product") // creates connkit_records_product
	if err != nil {
		log.Fatal(err)
	}

	id, err := products.Create(ctx, Product{SKU: "MUG-1", Price: 9.5})
	if err != nil {
		log.Fatal(err)
	}
	// The importer's idempotent create: the same key twice stores one record.
	kid, created, _ := products.CreateKeyed(ctx, "shop/product/gid-7", Product{SKU: "CAP-2", Price: 15})
	again, createdAgain, _ := products.CreateKeyed(ctx, "shop/product/gid-7", Product{SKU: "CAP-2", Price: 15})
	fmt.Println(id, kid, created, again, createdAgain)

	// Write a record and the app's own outbox row in one transaction.
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		if err := products.WithTx(tx).Update(ctx, id, Product{SKU: "MUG-1", Price: 11}); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS outbox (record TEXT)`)
		return err
	})
	if err != nil {
		log.Fatal(err)
	}

	// Walk every record, a page at a time.
	for e, err := range products.All(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.ID, e.Value.SKU, e.Value.Price, "version", e.Version)
	}
	// Output:
	// 1 2 true 2 false
	// 1 MUG-1 11 version 2
	// 2 CAP-2 15 version 1
}

package backend_test

import (
	"context"
	"fmt"
	"time"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/mapper"
	"github.com/connkit/connkit/queue"
)

// A connector is one backend plus one declaration per model. Orders refer to customers,
// so SyncAll imports customers first; an order export is deferred through the queue and
// runs once the backend is started. Everything here runs on memory stores.
func Example() {
	ctx := context.Background()
	api := fakeapi.New() // stands in for the CRM's REST API
	defer api.Close()
	ada := api.Add("customers", map[string]any{"name": "Ada Lovelace", "email": "ada@example.com"})
	api.Add("orders", map[string]any{"number": "SO-1", "customer_id": ada})

	customers, orders := local.NewMemory[Customer](), local.NewMemory[Order]()
	crm, err := backend.New(backend.Config{Name: "crm", BaseURL: api.URL},
		backend.WithModel(backend.Model[Customer]{
			Name:  "customer",
			Local: customers,
			Import: &backend.Import{
				List: adapter.Request{Path: "/customers"}, Records: "items", Since: "updated_at_min",
				Fetch: "/customers/{id}",
				Rules: []mapper.Rule{mapper.Direct("name", "name", mapper.Required()), mapper.Direct("email", "email")},
			},
			Export: &backend.Export{Create: "/customers",
				Rules: []mapper.Rule{mapper.Direct("name", "name"), mapper.Direct("email", "email")}},
		}),
		backend.WithModel(backend.Model[Order]{
			Name:  "order",
			Local: orders,
			Import: &backend.Import{
				List: adapter.Request{Path: "/orders"}, Records: "items", Fetch: "/orders/{id}",
				Rules: []mapper.Rule{mapper.Direct("number", "number"), mapper.Relation("customer_id", "customer_id", "customer")},
			},
			Export: &backend.Export{Create: "/orders",
				Rules: []mapper.Rule{mapper.Direct("number", "number"), mapper.Relation("customer_id", "customer_id", "customer")}},
		}),
	)
	if err != nil {
		fmt.Println(err)
		return
	}

	rep, err := crm.SyncAll(ctx)
	for _, r := range rep.Results {
		fmt.Printf("%s: created %d\n", r.Name, r.Counts.Created)
	}
	fmt.Println("sync all error:", err)

	// A new local order, exported later through the queue.
	orders.Put("100", Order{Number: "SO-2", CustomerID: customers.IDs()[0]})
	job, _ := crm.Later().Export(ctx, "order", "100")
	_ = crm.Start(ctx)
	fmt.Println("export job:", waitForJob(ctx, crm.Queue(), job.ID))
	_ = crm.Stop(ctx)
	fmt.Println("orders in the CRM:", api.Count("orders"))
	// Output:
	// import_customer: created 1
	// import_order: created 1
	// sync all error: <nil>
	// export job: completed
	// orders in the CRM: 2
}

// Customer and Order are the app's own types.
type Customer struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

type Order struct {
	Number     string `json:"number"`
	CustomerID string `json:"customer_id"`
}

// Validation names every bad field, so a typo in a config file is found at start-up.
func ExampleParseConfig_invalid() {
	_, err := backend.ParseConfig([]byte(`{name: crm, base_url: "crm.example.com", auth: {type: basic, username: bot}}`), nil)
	fmt.Println(err)
	// Output:
	// invalid backend config "crm": base_url: "crm.example.com" is not an absolute http(s) URL; auth.password: is required for auth type basic (write ${ENV_VAR} to keep it out of the file)
}

// waitForJob waits until the job is final and returns its state.
func waitForJob(ctx context.Context, q queue.Queue, id int64) queue.State {
	deadline := time.Now().Add(time.Minute)
	for {
		j, err := q.GetJob(ctx, id)
		if err != nil {
			return queue.State(err.Error())
		}
		switch j.State {
		case queue.StateCompleted, queue.StateDiscarded, queue.StateCancelled:
			return j.State
		}
		if time.Now().After(deadline) {
			return j.State
		}
		time.Sleep(10 * time.Millisecond)
	}
}

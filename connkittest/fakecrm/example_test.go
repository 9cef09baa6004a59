package fakecrm_test

import (
	"fmt"
	"io"
	"net/http"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/connkittest/fakecrm"
)

// A test starts a fake CRM with seeded data and points the connector under test at its
// URL with its token; afterwards it reads what the connector did through the server's
// methods and counters.
func Example() {
	crm := fakecrm.New(fakecrm.WithSeedData(12, 3, 1))
	defer crm.Close()

	req, _ := http.NewRequest("GET", crm.URL+"/crm/v3/objects/contacts?limit=5&associations=companies", nil)
	req.Header.Set("Authorization", "Bearer "+crm.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)

	first := gjson.GetBytes(page, "results.0")
	fmt.Println(resp.StatusCode, len(gjson.GetBytes(page, "results").Array()), "contacts")
	fmt.Println("first:", first.Get("id"), first.Get("properties.email"))
	fmt.Println("company:", first.Get("associations.companies.results.0.id"))
	fmt.Println("next page after:", gjson.GetBytes(page, "paging.next.after"))
	fmt.Println("lists served:", crm.Stats().Lists)
	// Output:
	// 200 5 contacts
	// first: 1001 ken.lamarr.1@example.com
	// company: 900002
	// next page after: 1006
	// lists served: 1
}

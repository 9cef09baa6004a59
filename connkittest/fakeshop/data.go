package fakeshop

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// The seeded shop's ID ranges: 13 and 14 digits, as on a real shop.
const (
	productIDBase  int64 = 7_300_000_000_000
	variantIDBase  int64 = 41_200_000_000_000
	customerIDBase int64 = 6_100_000_000_000
	orderIDBase    int64 = 5_200_000_000_000
	lineIDBase     int64 = 13_700_000_000_000
	addressIDBase  int64 = 7_900_000_000_000
)

var (
	seedStart = time.Date(2023, 1, 1, 9, 0, 0, 0, time.UTC)
	seedSpan  = 500 * 24 * time.Hour
	adjs      = []string{"Classic", "Organic", "Vintage", "Essential", "Premium", "Everyday", "Rugged", "Soft", "Lightweight", "Handmade", "Recycled", "Limited"}
	materials = []string{"Cotton", "Linen", "Wool", "Leather", "Canvas", "Bamboo", "Ceramic", "Oak", "Steel", "Denim"}
	nouns     = []string{"T-Shirt", "Hoodie", "Tote Bag", "Mug", "Cap", "Scarf", "Backpack", "Notebook", "Candle", "Blanket", "Apron", "Wallet"}
	vendors   = []string{"Northwind Goods", "Acme Apparel", "Blue Fjord", "Maple & Co", "Studio Kiln"}
	types     = map[string]string{"T-Shirt": "Apparel", "Hoodie": "Apparel", "Cap": "Accessories", "Scarf": "Accessories", "Wallet": "Accessories",
		"Tote Bag": "Bags", "Backpack": "Bags", "Mug": "Home", "Candle": "Home", "Blanket": "Home", "Apron": "Home", "Notebook": "Stationery"}
	sizes  = []string{"S", "M", "L", "XL"}
	colors = []string{"Black", "White", "Navy", "Olive", "Sand"}
	firsts = []string{"Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger", "Radia", "Tim", "Katherine", "John", "Hedy", "Niklaus", "Sophie", "Yukihiro", "Anita", "Bjarne"}
	lasts  = []string{"Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen", "Dijkstra", "Perlman", "Berners-Lee", "Johnson", "McCarthy", "Lamarr", "Wirth", "Wilson", "Matsumoto", "Borg", "Stroustrup"}
	cities = []struct{ city, province, country, code, zip string }{
		{"Ottawa", "Ontario", "Canada", "CA", "K1A 0B1"}, {"Lyon", "", "France", "FR", "69002"}, {"Austin", "Texas", "United States", "US", "78701"},
		{"Berlin", "", "Germany", "DE", "10115"}, {"Leeds", "", "United Kingdom", "GB", "LS1 4AP"}, {"Porto", "", "Portugal", "PT", "4000-322"},
	}
	tagSets = []string{"", "", "vip", "wholesale", "newsletter", "vip, newsletter"}
)

// seed builds the shop's records from the configuration, deterministically.
func seed(cfg config) map[string]*collection {
	rng := rand.New(rand.NewPCG(cfg.seed, 0x5eed))
	res := map[string]*collection{
		Products:  newCollection(Products, "product"),
		Customers: newCollection(Customers, "customer"),
		Orders:    newCollection(Orders, "order"),
	}
	type variantRef struct {
		id, product int64
		title, sku  string
		price       string
	}
	var variants []variantRef
	vid, pid := variantIDBase, productIDBase
	for i := range cfg.products {
		pid += 1 + int64(rng.IntN(997))
		created := seedStart.Add(time.Duration(rng.Int64N(int64(seedSpan)))).Truncate(time.Second)
		updated := created.Add(time.Duration(rng.Int64N(int64(60 * 24 * time.Hour)))).Truncate(time.Second)
		noun := nouns[rng.IntN(len(nouns))]
		title := fmt.Sprintf("%s %s %s", adjs[rng.IntN(len(adjs))], materials[rng.IntN(len(materials))], noun)
		if rng.IntN(4) == 0 {
			title += " " + strconv.Itoa(i+1) // real catalogues repeat titles; handles stay unique
		}
		status := "active"
		switch rng.IntN(20) {
		case 0:
			status = "draft"
		case 1:
			status = "archived"
		}
		base := 5 + rng.IntN(120)
		nv := 1 + rng.IntN(3)
		vs := make([]any, 0, nv)
		opts := []any{}
		for j := range nv {
			vid += 1 + int64(rng.IntN(97))
			vtitle := "Default Title"
			opt := any(nil)
			if nv > 1 {
				if types[noun] == "Apparel" {
					vtitle = sizes[j]
				} else {
					vtitle = colors[j]
				}
				opt = vtitle
			}
			price := fmt.Sprintf("%d.%02d", base+j*3, []int{0, 50, 95, 99}[rng.IntN(4)])
			sku := fmt.Sprintf("%s-%05d-%d", strings.ToUpper(noun[:3]), i+1, j+1)
			if rng.IntN(40) == 0 {
				sku = "" // merchants leave SKUs empty
			}
			v := map[string]any{
				"id": vid, "product_id": pid, "title": vtitle, "price": price, "sku": sku, "position": j + 1,
				"compare_at_price": nil, "option1": opt, "option2": nil, "option3": nil,
				"inventory_quantity": rng.IntN(200) - 5, "inventory_management": "shopify",
				"barcode": nil, "grams": 100 + rng.IntN(900), "weight": 0.1 + float64(rng.IntN(90))/100, "weight_unit": "kg",
				"requires_shipping": true, "taxable": true,
				"created_at": formatTime(created), "updated_at": formatTime(updated),
			}
			if rng.IntN(5) == 0 {
				v["compare_at_price"] = fmt.Sprintf("%d.00", base+j*3+10)
			}
			vs = append(vs, v)
			variants = append(variants, variantRef{id: vid, product: pid, title: vtitle, sku: sku, price: price})
		}
		if nv > 1 {
			name := "Color"
			if types[noun] == "Apparel" {
				name = "Size"
			}
			vals := []any{}
			for _, v := range vs {
				vals = append(vals, v.(map[string]any)["option1"])
			}
			opts = append(opts, map[string]any{"name": name, "position": 1, "values": vals})
		} else {
			opts = append(opts, map[string]any{"name": "Title", "position": 1, "values": []any{"Default Title"}})
		}
		p := map[string]any{
			"id": pid, "title": title, "body_html": "<p>" + title + ", made to last.</p>",
			"vendor": vendors[rng.IntN(len(vendors))], "product_type": types[noun],
			"handle": handleize(title) + "-" + strconv.Itoa(i+1), "status": status,
			"tags": tagSets[rng.IntN(len(tagSets))], "template_suffix": nil, "published_scope": "web",
			"published_at": nil, "created_at": formatTime(created), "updated_at": formatTime(updated),
			"variants": vs, "options": opts, "images": []any{},
			"admin_graphql_api_id": "gid://shopify/Product/" + strconv.FormatInt(pid, 10),
		}
		if status == "active" {
			p["published_at"] = formatTime(created)
		}
		mustAdd(res[Products], p)
	}

	type customerRef struct {
		id                     int64
		email, first, last     string
		state                  string
		created                time.Time
		defaultAddress         map[string]any
		tags, phone, currency2 string
	}
	var customers []customerRef
	cid, aid := customerIDBase, addressIDBase
	for i := range cfg.customers {
		cid += 1 + int64(rng.IntN(9973))
		aid += 1 + int64(rng.IntN(97))
		first, last := firsts[rng.IntN(len(firsts))], lasts[rng.IntN(len(lasts))]
		created := seedStart.Add(time.Duration(rng.Int64N(int64(seedSpan)))).Truncate(time.Second)
		updated := created.Add(time.Duration(rng.Int64N(int64(90 * 24 * time.Hour)))).Truncate(time.Second)
		email := fmt.Sprintf("%s.%s%d@example.com", strings.ToLower(first), strings.ToLower(strings.ReplaceAll(last, "-", "")), i+1)
		if rng.IntN(25) == 0 {
			email = " " + strings.ToUpper(email[:1]) + email[1:] // typed by hand at checkout
		}
		phone := any(nil)
		if rng.IntN(3) > 0 {
			phone = fmt.Sprintf("+1613555%04d", i%10000)
		}
		c := cities[rng.IntN(len(cities))]
		addr := map[string]any{
			"id": aid, "customer_id": cid, "first_name": first, "last_name": last, "company": nil,
			"address1": fmt.Sprintf("%d Main Street", 1+rng.IntN(400)), "address2": nil,
			"city": c.city, "province": c.province, "country": c.country, "country_code": c.code, "zip": c.zip,
			"phone": phone, "name": first + " " + last, "default": true,
		}
		state := "enabled"
		if rng.IntN(6) == 0 {
			state = "disabled"
		}
		tags := tagSets[rng.IntN(len(tagSets))]
		m := map[string]any{
			"id": cid, "email": email, "first_name": first, "last_name": last, "phone": phone,
			"state": state, "verified_email": rng.IntN(5) > 0, "accepts_marketing": rng.IntN(2) == 0,
			"tags": tags, "currency": "USD", "note": nil, "tax_exempt": false,
			"orders_count": 0, "total_spent": "0.00", "last_order_id": nil,
			"created_at": formatTime(created), "updated_at": formatTime(updated),
			"addresses": []any{addr}, "default_address": addr,
			"admin_graphql_api_id": "gid://shopify/Customer/" + strconv.FormatInt(cid, 10),
		}
		mustAdd(res[Customers], m)
		customers = append(customers, customerRef{id: cid, email: strings.TrimSpace(strings.ToLower(email)), first: first, last: last,
			state: state, created: created, defaultAddress: addr, tags: tags})
	}

	oid, lid := orderIDBase, lineIDBase
	for i := range cfg.orders {
		oid += 1 + int64(rng.IntN(9973))
		created := seedStart.Add(time.Duration(rng.Int64N(int64(seedSpan)))).Truncate(time.Second)
		updated := created.Add(time.Duration(rng.Int64N(int64(30 * 24 * time.Hour)))).Truncate(time.Second)
		var cust any
		email := fmt.Sprintf("guest%d@example.net", i+1)
		if len(customers) > 0 && rng.IntN(10) > 0 { // one order in ten is a guest checkout
			c := customers[rng.IntN(len(customers))]
			email = c.email
			cust = map[string]any{
				"id": c.id, "email": c.email, "first_name": c.first, "last_name": c.last, "state": c.state,
				"tags": c.tags, "created_at": formatTime(c.created), "default_address": c.defaultAddress,
			}
		}
		nl := 1 + rng.IntN(4)
		lines := make([]any, 0, nl)
		total := 0
		for range nl {
			lid += 1 + int64(rng.IntN(97))
			qty := 1 + rng.IntN(3)
			line := map[string]any{"id": lid, "quantity": qty, "fulfillable_quantity": qty, "gift_card": false, "taxable": true}
			if len(variants) == 0 || rng.IntN(50) == 0 {
				// a custom item, or one whose product was deleted since: Shopify keeps the
				// line with null product and variant.
				line["variant_id"], line["product_id"] = nil, nil
				line["title"], line["price"], line["sku"], line["name"] = "Gift wrapping", "4.00", "", "Gift wrapping"
				line["variant_title"] = nil
				total += 400 * qty
			} else {
				v := variants[rng.IntN(len(variants))]
				line["variant_id"], line["product_id"] = v.id, v.product
				line["title"], line["price"], line["sku"], line["variant_title"] = "Item "+v.sku, v.price, v.sku, v.title
				line["name"] = "Item " + v.sku + " - " + v.title
				cents := priceCents(v.price)
				total += cents * qty
			}
			lines = append(lines, line)
		}
		fin := []string{"paid", "paid", "paid", "pending", "refunded", "partially_refunded", "authorized"}[rng.IntN(7)]
		var ful any
		switch rng.IntN(3) {
		case 1:
			ful = "fulfilled"
		case 2:
			ful = "partial"
		}
		o := map[string]any{
			"id": oid, "name": fmt.Sprintf("#%d", 1001+i), "order_number": 1001 + i, "number": 1 + i,
			"email": email, "contact_email": email, "currency": "USD", "presentment_currency": "USD",
			"financial_status": fin, "fulfillment_status": ful,
			"subtotal_price": centsString(total), "total_tax": "0.00", "total_price": centsString(total),
			"total_discounts": "0.00", "test": false, "confirmed": true, "note": nil, "tags": "",
			"closed_at": nil, "cancelled_at": nil, "cancel_reason": nil, "processed_at": formatTime(created),
			"created_at": formatTime(created), "updated_at": formatTime(updated),
			"customer": cust, "line_items": lines,
			"admin_graphql_api_id": "gid://shopify/Order/" + strconv.FormatInt(oid, 10),
		}
		switch rng.IntN(10) {
		case 0:
			o["cancelled_at"], o["cancel_reason"] = formatTime(updated), "customer"
		case 1, 2, 3:
			o["closed_at"] = formatTime(updated)
		}
		mustAdd(res[Orders], o)
	}
	return res
}

func mustAdd(c *collection, m map[string]any) {
	if _, err := c.add(m); err != nil {
		panic(err) // the generator's own records: a bug here is the package's
	}
}

func handleize(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

func priceCents(p string) int {
	whole, frac, _ := strings.Cut(p, ".")
	w, _ := strconv.Atoi(whole)
	f, _ := strconv.Atoi((frac + "00")[:2])
	return w*100 + f
}

func centsString(c int) string { return fmt.Sprintf("%d.%02d", c/100, c%100) }

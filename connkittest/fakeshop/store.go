package fakeshop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// shopZone is the shop's time zone: Shopify writes times with the shop's UTC offset.
var shopZone = time.FixedZone("EST", -5*3600)

// formatTime writes t as Shopify does: RFC 3339, whole seconds, the shop's offset.
func formatTime(t time.Time) string { return t.In(shopZone).Format(time.RFC3339) }

// item is one stored record.
type item struct {
	id      int64
	updated time.Time
	status  string // products: active/draft/archived; orders: open/closed/cancelled
	body    []byte // the record's JSON as served
}

// collection holds one resource's records in two orders: by ID and by (updated_at, ID).
type collection struct {
	name, singular string
	byID           map[int64]*item
	byIDOrder      []*item
	byUpdated      []*item
}

func newCollection(name, singular string) *collection {
	return &collection{name: name, singular: singular, byID: make(map[int64]*item)}
}

func cmpUpdated(a, b *item) int {
	if c := a.updated.Compare(b.updated); c != 0 {
		return c
	}
	return cmpID(a, b)
}

func cmpID(a, b *item) int {
	switch {
	case a.id < b.id:
		return -1
	case a.id > b.id:
		return 1
	}
	return 0
}

// add stores a new record built from m (which must hold its id and updated_at).
func (c *collection) add(m map[string]any) (*item, error) {
	it := &item{}
	if err := it.fill(c.name, m); err != nil {
		return nil, err
	}
	if _, dup := c.byID[it.id]; dup {
		return nil, fmt.Errorf("fakeshop: duplicate %s id %d", c.singular, it.id)
	}
	c.byID[it.id] = it
	i, _ := slices.BinarySearchFunc(c.byIDOrder, it, cmpID)
	c.byIDOrder = slices.Insert(c.byIDOrder, i, it)
	j, _ := slices.BinarySearchFunc(c.byUpdated, it, cmpUpdated)
	c.byUpdated = slices.Insert(c.byUpdated, j, it)
	return it, nil
}

// put replaces it's content with m, stamped updated at now.
func (c *collection) put(it *item, m map[string]any, now time.Time) error {
	m["updated_at"] = formatTime(now)
	if i, ok := slices.BinarySearchFunc(c.byUpdated, it, cmpUpdated); ok {
		c.byUpdated = slices.Delete(c.byUpdated, i, i+1)
	}
	err := it.fill(c.name, m)
	j, _ := slices.BinarySearchFunc(c.byUpdated, it, cmpUpdated)
	c.byUpdated = slices.Insert(c.byUpdated, j, it)
	return err
}

func (c *collection) remove(it *item) {
	delete(c.byID, it.id)
	if i, ok := slices.BinarySearchFunc(c.byIDOrder, it, cmpID); ok {
		c.byIDOrder = slices.Delete(c.byIDOrder, i, i+1)
	}
	if i, ok := slices.BinarySearchFunc(c.byUpdated, it, cmpUpdated); ok {
		c.byUpdated = slices.Delete(c.byUpdated, i, i+1)
	}
}

// fill sets the item from a record map.
func (it *item) fill(resource string, m map[string]any) error {
	id, ok := asInt(m["id"])
	if !ok {
		return fmt.Errorf("fakeshop: record without an integer id")
	}
	us, _ := m["updated_at"].(string)
	u, err := time.Parse(time.RFC3339, us)
	if err != nil {
		return fmt.Errorf("fakeshop: record %d: updated_at: %w", id, err)
	}
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("fakeshop: encoding record %d: %w", id, err)
	}
	it.id, it.updated, it.body = id, u.UTC(), body
	switch resource {
	case Products:
		it.status, _ = m["status"].(string)
	case Orders:
		switch {
		case m["cancelled_at"] != nil:
			it.status = "cancelled"
		case m["closed_at"] != nil:
			it.status = "closed"
		default:
			it.status = "open"
		}
	}
	return nil
}

func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case string: // Rails reads "123" as 123
		i, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
		return i, err == nil
	case float64:
		if n == float64(int64(n)) {
			return int64(n), true
		}
	}
	return 0, false
}

// decodeObject decodes a JSON object keeping numbers exact.
func decodeObject(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	return m, nil
}

package apisync_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestInboundTimeoutMeansNothingStored: a 408 says "nothing was stored", so a client may
// retry it. Configs with time limits from 0.4 to 9.6 ms are sent a 200-record POST many
// times; whichever side of the commit the limit falls on, a 408 never comes with records
// stored (the answer to a committed write is built past the limit).
func TestInboundTimeoutMeansNothingStored(t *testing.T) {
	db := openDB(t)
	var docs []string
	var names []string
	for i := 0; i < 24; i++ {
		d := time.Duration(1+i) * 400 * time.Microsecond
		n := fmt.Sprintf("slow%d", i)
		c := strings.Replace(partnersIn, "name: partners-in", "name: "+n+"\ntimeout: "+d.String(), 1)
		c = strings.Replace(c, "/api/partners", "/api/"+n, 1)
		docs = append(docs, c)
		names = append(names, n)
	}
	s := openSync(t, db, parseAll(t, tokenEnv, docs...))
	h := s.Handler()
	var items []string
	for i := 0; i < 200; i++ {
		items = append(items, fmt.Sprintf(`{"full_name":"n%d","email_address":"e%d@x"}`, i, i))
	}
	body := "[" + strings.Join(items, ",") + "]"
	bad, n408, n201 := 0, 0, 0
	for round := 0; round < 6; round++ {
		for _, n := range names {
			before := countRecords(t, s, "res.partner")
			code, _, _ := call(t, h, "POST", "/api/"+n, body, bearer)
			after := countRecords(t, s, "res.partner")
			switch code {
			case 408:
				n408++
				if after != before {
					bad++
					t.Logf("%s: 408 but %d records were stored", n, after-before)
				}
			case 201:
				n201++
			default:
				t.Logf("%s: %d", n, code)
			}
		}
	}
	t.Logf("408: %d, 201: %d, 408 with records stored: %d", n408, n201, bad)
	if bad > 0 {
		t.Fail()
	}
}

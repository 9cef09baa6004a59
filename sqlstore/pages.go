package sqlstore

import "iter"

// keysetPages yields the rows of a keyset-paginated query: fetch(last, n) returns up to n
// rows after last (nil: from the start), pageSize per round trip, and at most limit rows
// in all (0: no limit). Each page is read and its rows closed before it is yielded, so
// the loop body may use the store, even on a single-connection database.
func keysetPages[T any](limit, pageSize int, fetch func(last *T, n int) ([]T, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		left := limit
		var last *T
		for {
			n := pageSize
			if limit > 0 && left < n {
				n = left
			}
			page, err := fetch(last, n)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, v := range page {
				if !yield(v, nil) {
					return
				}
			}
			if len(page) < n {
				return
			}
			if limit > 0 {
				if left -= len(page); left <= 0 {
					return
				}
			}
			last = &page[len(page)-1]
		}
	}
}

// Package report holds the counts every sync run reports — importer, exporter, backend
// operation, queued job — and the error a run returns when it went through but some records
// failed. It is a leaf package: the runners and the backend above them all share it.
package report

import "fmt"

// Counts is what one run did to the records it was given. Every record lands in exactly one
// bucket, so Total equals the number of records the run saw (listed, or asked for).
type Counts struct {
	// Created and Updated count records written on the target side.
	Created int `json:"created"`
	Updated int `json:"updated"`
	// Skipped counts records that needed no write (unchanged, excluded, skipped by a mapping).
	Skipped int `json:"skipped"`
	// Duplicates counts repeats of a record already seen in the same run (a listing that
	// showed one record twice); the newest copy was used, the others are counted here.
	Duplicates int `json:"duplicates,omitempty"`
	// Failed counts records whose sync returned an error.
	Failed int `json:"failed"`
	// Enqueued counts records handed to a job queue to be synced later.
	Enqueued int `json:"enqueued,omitempty"`
}

// Add returns the sum of c and o.
func (c Counts) Add(o Counts) Counts {
	return Counts{
		Created:    c.Created + o.Created,
		Updated:    c.Updated + o.Updated,
		Skipped:    c.Skipped + o.Skipped,
		Duplicates: c.Duplicates + o.Duplicates,
		Failed:     c.Failed + o.Failed,
		Enqueued:   c.Enqueued + o.Enqueued,
	}
}

// Total is the number of records the counts cover.
func (c Counts) Total() int {
	return c.Created + c.Updated + c.Skipped + c.Duplicates + c.Failed + c.Enqueued
}

// PartialError is returned by a run that went through but in which some records failed:
// the Counts say how many, and Errors holds the first of their errors (errors.Is and
// errors.As look into them).
type PartialError struct {
	// Failed is how many records failed; it may exceed len(Errors).
	Failed int
	Errors []error
}

// Error implements error.
func (e *PartialError) Error() string {
	if len(e.Errors) == 0 {
		return fmt.Sprintf("%d record(s) failed", e.Failed)
	}
	return fmt.Sprintf("%d record(s) failed; first: %v", e.Failed, e.Errors[0])
}

// Unwrap returns the record errors.
func (e *PartialError) Unwrap() []error { return e.Errors }

// Partial returns a *PartialError for failed records with their errors, or nil when none
// failed.
func Partial(failed int, errs []error) error {
	if failed == 0 {
		return nil
	}
	return &PartialError{Failed: failed, Errors: errs}
}

// Package report holds what every sync reports — the Result of one record's import or
// export, the Counts of a run (importer, exporter, backend operation, queued job) — and the
// error a run returns when it went through but some records failed. It sits just above
// binding: the runners and the backend above them all share it.
package report

import (
	"errors"
	"fmt"

	"github.com/connkit/connkit/binding"
)

// Errors matched with errors.Is, the same for imports and exports.
var (
	// ErrSkip, returned by a mapping (an importer.DecodeFunc, an exporter.EncodeFunc, a
	// mapper Func rule), skips the record: its binding is marked skipped.
	ErrSkip = errors.New("record skipped by the mapping")
	// ErrNoExternalID: no external ID at the runner's ID path (WithIDPath): in an external
	// record (import) or in a create's response (export).
	ErrNoExternalID = errors.New("no external ID at the ID path")
	// ErrTooManyRetries: the record's binding failed the runner's WithMaxRetries times in
	// a row; the runner's Force option syncs it anyway.
	ErrTooManyRetries = errors.New("record failed too many times")
)

// RecordError is the error of one record's import or export: which record, in which
// step. Its text is what a failed binding keeps as LastError.
type RecordError struct {
	// Op is "import" or "export".
	Op             string
	Backend, Model string
	// ExternalID names the record of an import, LocalID the record of an export.
	ExternalID, LocalID string
	// Step is what was being done. Import: "parse", "fetch", "bind", "check", "claim",
	// "enqueue", "map", "create", "update", "mark". Export: "read", "bind", "claim", "map",
	// "create", "update", "delete", "mark", "lease" (the lease was lost while it ran).
	Step string
	Err  error
}

// Error implements error: "importing <backend> <model> "<external ID>" (<step>): <cause>"
// or "exporting <backend> <model> local "<local ID>" (<step>): <cause>".
func (e *RecordError) Error() string {
	if e.Op == "export" {
		return fmt.Sprintf("exporting %s %s local %q (%s): %v", e.Backend, e.Model, e.LocalID, e.Step, e.Err)
	}
	return fmt.Sprintf("importing %s %s %q (%s): %v", e.Backend, e.Model, e.ExternalID, e.Step, e.Err)
}

// Unwrap returns the cause.
func (e *RecordError) Unwrap() error { return e.Err }

// Action says what an import or an export did to one record.
type Action string

// Actions.
const (
	// Created: the record was created on the target side (locally by an import, remotely
	// by an export's POST) and bound.
	Created Action = "created"
	// Updated: the target record was written again (a local update, a remote PUT/PATCH).
	Updated Action = "updated"
	// Skipped: nothing was written — unchanged, no-export binding, ErrSkip from the
	// mapping, or (an exporter's Delete) nothing bound.
	Skipped Action = "skipped"
	// Deleted: an exporter's Delete removed the remote record (or found it gone) and the
	// binding.
	Deleted Action = "deleted"
	// Enqueued: a batch import handed the record to a job queue instead of importing it.
	Enqueued Action = "enqueued"
	// Failed: the sync failed; the error says which step.
	Failed Action = "failed"
)

// Result is what one record's import or export did.
type Result struct {
	// LocalID is the app's record ("" when there is none yet).
	LocalID string
	// ExternalID is the external record's ID ("" when there is none yet).
	ExternalID string
	// Action is what the sync did. It is empty when ctx ended before an import was decided
	// (a shutdown is not a failure: nothing is counted, run it again).
	Action Action
	// Binding is the binding as stored after the sync (zero when none could be written,
	// or when an exporter's Delete removed it).
	Binding binding.Binding
}

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

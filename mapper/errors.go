package mapper

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors, for errors.Is on a [*MappingError]'s cause.
var (
	// ErrRequired means a required source value was missing or null.
	ErrRequired = errors.New("required value is missing")
	// ErrConvert means a converter could not turn the value into the wanted type, or
	// the record given to an import mapper is not a JSON object.
	ErrConvert = errors.New("cannot convert value")
	// ErrMissingDependency means a related record has no binding on the other side yet
	// (it was not imported/exported, or its local record is gone). The error names the
	// model and ID, and also matches binding.ErrNotFound when the resolver reported it.
	ErrMissingDependency = errors.New("related record is not synchronised yet")
	// ErrExpression means an expression rule failed at run time (including exceeding
	// its memory budget).
	ErrExpression = errors.New("expression failed")
	// ErrInvalidRule means a rule or mapper definition is invalid (reported when the
	// mapper is built, never while mapping).
	ErrInvalidRule = errors.New("invalid mapping rule")
)

// MappingError is the one error type a mapper returns while mapping a record. It names
// the mapper, the rule, the target field and the record so the failing line of a sync
// can be found without a debugger. Use errors.As to get it and errors.Is on it to test
// the cause ([ErrRequired], [ErrConvert], [ErrMissingDependency], binding.ErrNotFound…).
//
// When all errors of a record are collected ([CollectErrors]),
// Map returns errors.Join of several *MappingError; errors.As finds the first.
type MappingError struct {
	// Mapper is the mapper's name ("order.import"); children are "parent/child[i]".
	Mapper string
	// Rule names the rule: its explicit name or "#index kind".
	Rule string
	// Field is the rule's target (local field on import, payload path on export).
	Field string
	// RecordID identifies the record being mapped, when known.
	RecordID string
	// Cause is the underlying error.
	Cause error
}

// Error formats the error as `mapper "<mapper>" rule <rule> field "<field>" record "<id>": <cause>`,
// leaving out the parts that are empty.
func (e *MappingError) Error() string {
	var b strings.Builder
	b.WriteString("mapper ")
	b.WriteString(strconv.Quote(e.Mapper))
	if e.Rule != "" {
		b.WriteString(" rule ")
		b.WriteString(e.Rule)
	}
	if e.Field != "" {
		b.WriteString(" field ")
		b.WriteString(strconv.Quote(e.Field))
	}
	if e.RecordID != "" {
		b.WriteString(" record ")
		b.WriteString(strconv.Quote(e.RecordID))
	}
	b.WriteString(": ")
	if e.Cause != nil {
		b.WriteString(e.Cause.Error())
	} else {
		b.WriteString("unknown error")
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *MappingError) Unwrap() error { return e.Cause }

// missingDependencyError is the cause of a [MappingError] when a relational rule meets
// a related record that has no counterpart on the other side. It matches
// [ErrMissingDependency] and the resolver's own error (binding.ErrNotFound).
type missingDependencyError struct {
	model  string // the related record's model ("res.partner")
	id     string // external on import, local on export
	export bool   // the local record is not exported yet
	err    error  // the resolver's error
}

// Error says which dependency is missing and what to do.
func (e *missingDependencyError) Error() string {
	if e.export {
		return "related " + e.model + " with local ID " + strconv.Quote(e.id) +
			" is not exported yet; export it first (or bind it)"
	}
	return "related " + e.model + " with external ID " + strconv.Quote(e.id) +
		" is not imported yet (or its local record is gone); import it first, or build the mapper WithImportMissing"
}

// Unwrap returns [ErrMissingDependency] and the resolver's error.
func (e *missingDependencyError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrMissingDependency}
	}
	return []error{ErrMissingDependency, e.err}
}

// SpecError reports an invalid mapping spec (file) or rule definition, with the rule's
// position so it can be fixed: Path like "rules[3]" or "rules[2].children.rules[0]",
// Line (1-based line of the rule in a YAML or JSON spec, 0 for Go-built rules) and Field.
type SpecError struct {
	// File is the spec file name, when loaded from a file.
	File string
	// Path locates the rule inside the spec ("rules[3]").
	Path string
	// Index is the rule's index in its list, -1 for mapper-level problems.
	Index int
	// Line is the 1-based line of the rule in its spec file, 0 when unknown.
	Line int
	// Field is the rule's field (local field name), when set.
	Field string
	// Err is what is wrong.
	Err error
}

// Error formats the error as `file:line: rules[3] (field "x"): problem`.
func (e *SpecError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(":")
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
	} else {
		b.WriteString("mapper")
	}
	if e.Field != "" {
		b.WriteString(" (field ")
		b.WriteString(strconv.Quote(e.Field))
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying problem; SpecErrors also match [ErrInvalidRule].
func (e *SpecError) Unwrap() []error { return []error{ErrInvalidRule, e.Err} }

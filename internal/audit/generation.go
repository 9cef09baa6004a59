package audit

// RedactorGeneration returns the secret generation of a *synclog.Redactor: a number that
// changes whenever literal secrets are added to it, so a cache of redacted output stays
// valid while the generation it was made under is current. synclog sets it (the
// parameter is untyped only because this package cannot import synclog); the adapter's
// cache of redacted request headers reads it.
var RedactorGeneration func(redactor any) uint64

package sqlstore

// LatestSchemaVersion is the schema version this code migrates to (for the tests).
func LatestSchemaVersion() int { return len(migrations) }

// WithClock and WithPageSize give the tests the unexported options.
var (
	WithClock    = withClock
	WithPageSize = withPageSize
)

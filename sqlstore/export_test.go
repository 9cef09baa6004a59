package sqlstore

// LatestSchemaVersion is the schema version this code migrates to (for the tests).
func LatestSchemaVersion() int { return len(migrations) }

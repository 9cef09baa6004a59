package sqlstore

// The audit log writer's bounds, for the tests.
const (
	LogQueueRows = logQueueRows
	LogBatchRows = logBatchRows
)

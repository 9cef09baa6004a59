package exporter

// IdempotencyKey exposes idempotencyKey to the tests.
var IdempotencyKey = idempotencyKey

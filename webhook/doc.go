// Package webhook receives events pushed by external systems: an [http.Handler]
// ([Receiver]) that verifies each delivery's signature, stores the raw delivery before
// answering, deduplicates redeliveries by delivery ID, and hands each new delivery to a
// queue, whose job runs the handler registered for its event type ([Receiver.Process]).
//
// Verifiers cover the common schemes, each with several secrets at once for rotation and
// constant-time comparison: [NewHMAC] (an HMAC-SHA256 of the body in one header, hex or
// base64, with a prefix: Shopify, GitHub), [NewStandardWebhooks] (standardwebhooks.com)
// and [NewStripe] (Stripe-Signature: t=…,v1=…). Each also signs, with its Sign method, so
// an app's tests produce deliveries its receiver accepts.
//
// Deliveries live in a [Store]: [NewMemory] here, the SQL store of package sqlstore
// (SQLite or Postgres) for real use; package webhook/webhooktest is the conformance suite
// both pass. A delivery is stored pending and ends processed, ignored (no handler, or
// [ErrIgnore]) or failed (its handler's error on the last attempt); [Receiver.Reprocess]
// retries or replays one, Store.List lists them by status and Store.Purge deletes old
// ones.
//
// [WithSpool] trades the database commit before each answer for one write to a spool
// file: a flusher moves the spool into the store in batches ([BatchInserter]) right
// after, and [Receiver.Resume] stores what a crashed process left in its spool.
package webhook

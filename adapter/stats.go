package adapter

import (
	"sync/atomic"
	"time"
)

// ClientStats is a snapshot of a Client's counters since New, from Client.Stats. Every
// field only grows. Waits are what the client chose to wait (through WithClock), not wall
// time.
type ClientStats struct {
	// Requests counts calls: Do, Get, Post, … each count once, however many attempts.
	Requests uint64
	// Attempts counts requests handed to the transport, retries included.
	Attempts uint64
	// TransportResends counts requests net/http sent again on its own, within one
	// attempt, because a reused keep-alive connection turned out closed (it does so for
	// idempotent requests only). The server may have seen such a request twice.
	TransportResends uint64
	// Responses by status class, per attempt; TransportErrors counts attempts that got
	// no response (connection refused, reset, timeouts, …).
	Responses2xx, Responses3xx, Responses4xx, Responses5xx, TransportErrors uint64
	// Retries counts attempts after the first of a call (a 401 refresh included).
	Retries uint64
	// RateLimited counts 429 responses.
	RateLimited uint64
	// LimiterWait is the time spent waiting on the client-side rate limiter (its token
	// bucket and the pauses after 429s or exhausted quota headers).
	LimiterWait time.Duration
	// RetryAfterWait is the time spent before retries waiting as the server's
	// Retry-After asked; BackoffWait the time spent in exponential backoff.
	RetryAfterWait, BackoffWait time.Duration
}

// clientStats holds the live counters: atomics, so counting costs a few uncontended adds
// per attempt.
type clientStats struct {
	requests, attempts, resends       atomic.Uint64
	classes                           [5]atomic.Uint64 // transport error, 2xx, 3xx, 4xx, 5xx
	retries, rateLimited              atomic.Uint64
	limiterWait, retryAfter, backoffW atomic.Int64
}

// countResponse counts one attempt's outcome: status 0 is a transport error.
func (s *clientStats) countResponse(status int) {
	switch {
	case status == 0:
		s.classes[0].Add(1)
	case status < 300:
		s.classes[1].Add(1)
	case status < 400:
		s.classes[2].Add(1)
	case status < 500:
		s.classes[3].Add(1)
		if status == 429 {
			s.rateLimited.Add(1)
		}
	default:
		s.classes[4].Add(1)
	}
}

// Stats returns a snapshot of the client's counters. It is safe to call at any time from
// any goroutine; the fields are read one by one, so a snapshot taken while calls run may
// be a few counts apart between fields.
func (c *Client) Stats() ClientStats {
	s := &c.stats
	return ClientStats{
		Requests:         s.requests.Load(),
		Attempts:         s.attempts.Load(),
		TransportResends: s.resends.Load(),
		TransportErrors:  s.classes[0].Load(),
		Responses2xx:     s.classes[1].Load(),
		Responses3xx:     s.classes[2].Load(),
		Responses4xx:     s.classes[3].Load(),
		Responses5xx:     s.classes[4].Load(),
		Retries:          s.retries.Load(),
		RateLimited:      s.rateLimited.Load(),
		LimiterWait:      time.Duration(s.limiterWait.Load()),
		RetryAfterWait:   time.Duration(s.retryAfter.Load()),
		BackoffWait:      time.Duration(s.backoffW.Load()),
	}
}

package main

import (
	"context"
	"errors"
)

// errNotAvailable: package apisync has not landed yet.
var errNotAvailable = errors.New("not available in this build: package apisync is not there yet")

func runServe(ctx context.Context, e *env, args []string) error    { return errNotAvailable }
func runPush(ctx context.Context, e *env, args []string) error     { return errNotAvailable }
func runValidate(ctx context.Context, e *env, args []string) error { return errNotAvailable }
func bindingsRetry(ctx context.Context, e *env, args []string) error {
	return errNotAvailable
}

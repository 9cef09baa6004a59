package mapper

import (
	"context"
	"errors"
	"sync"

	"github.com/connkit/connkit/binding"
)

// fakeResolver is a map-based IDResolver: model → external ID → local ID.
type fakeResolver struct {
	mu    sync.Mutex
	toLoc map[string]map[string]string
	fail  error // returned for every call when set
}

func newFakeResolver() *fakeResolver {
	return &fakeResolver{toLoc: map[string]map[string]string{}}
}

func (f *fakeResolver) bind(model, ext, local string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.toLoc[model] == nil {
		f.toLoc[model] = map[string]string{}
	}
	f.toLoc[model][ext] = local
}

func (f *fakeResolver) ToLocal(_ context.Context, model, ext string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return "", f.fail
	}
	if l, ok := f.toLoc[model][ext]; ok {
		return l, nil
	}
	return "", binding.ErrNotFound
}

func (f *fakeResolver) ToExternal(_ context.Context, model, local string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return "", f.fail
	}
	for e, l := range f.toLoc[model] {
		if l == local {
			return e, nil
		}
	}
	return "", binding.ErrNotFound
}

var errBoom = errors.New("boom")

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

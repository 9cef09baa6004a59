package mapper

import (
	"context"
	"errors"
	"os"
	"path/filepath"
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

// mapTo maps a record and decodes it into T, as ImportFunc does.
func mapTo[T any](ctx context.Context, m *ImportMapper, record []byte, opts Options) (T, error) {
	v, err := m.Map(ctx, record, opts)
	if err != nil {
		var zero T
		return zero, err
	}
	return decodeValues[T](v)
}

// mapFrom encodes v and maps it, as ExportFunc does.
func mapFrom[T any](ctx context.Context, m *ExportMapper, v T, opts Options) ([]byte, error) {
	vals, err := encodeValues(v)
	if err != nil {
		return nil, err
	}
	return m.Map(ctx, vals, opts)
}

func loadImport(path string, opts ...Option) (*ImportMapper, error) {
	s, err := loadSpec(path)
	if err != nil {
		return nil, err
	}
	return s.Import(opts...)
}

func loadExport(path string, opts ...Option) (*ExportMapper, error) {
	s, err := loadSpec(path)
	if err != nil {
		return nil, err
	}
	return s.Export(opts...)
}

func loadSpec(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseSpec(data, filepath.Base(path))
}

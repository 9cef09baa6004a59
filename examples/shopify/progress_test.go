package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/importer"
	"github.com/connkit/connkit/report"
)

// On a terminal the running line is redrawn in place and cleared at the end; elsewhere
// only plain lines are written.
func TestProgressOnATerminal(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{w: &buf, tty: true}
	n := uint64(0)
	s := p.start("importing", func() adapter.ClientStats { n += 3; return adapter.ClientStats{Requests: n} })
	time.Sleep(350 * time.Millisecond) // a few redraws
	s.done("10 records")
	out := buf.String()
	if !strings.Contains(out, "\r\033[K") || !strings.Contains(out, "importing: ") || !strings.HasSuffix(out, "\r\033[Kimporting: 10 records in "+out[strings.LastIndex(out, " in ")+4:]) {
		t.Fatalf("terminal output %q", out)
	}
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("a terminal gets one finished line, got %q", out)
	}
	buf.Reset()
	plain := &progress{w: &buf}
	plain.start("exporting", func() adapter.ClientStats { return adapter.ClientStats{} }).done("2 products")
	if got := buf.String(); strings.Contains(got, "\033") || !strings.HasPrefix(got, "exporting…\nexporting: 2 products in ") {
		t.Fatalf("plain output %q", got)
	}
	if newProgress(&buf).tty {
		t.Fatal("a buffer is no terminal")
	}
}

// TestProgressCountsPerModel: the running line shows each model's records so far, in sync
// order, from the backend's progress hook.
func TestProgressCountsPerModel(t *testing.T) {
	p := newProgress(io.Discard)
	if got := p.counts(); got != "" {
		t.Fatalf("before any import: %q", got)
	}
	p.imported("order", importer.Summary{Counts: report.Counts{Created: 7}})
	p.imported("product", importer.Summary{Counts: report.Counts{Created: 200, Skipped: 50}})
	if got, want := p.counts(), "product 250, order 7; "; got != want {
		t.Errorf("counts = %q, want %q", got, want)
	}
}

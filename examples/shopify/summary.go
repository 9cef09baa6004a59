package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/importer"
)

func (s *summary) finish(st adapter.ClientStats, start time.Time) {
	s.Requests, s.Retries, s.Limited = st.Requests, st.Retries, st.RateLimited
	s.Seconds = time.Since(start).Round(time.Millisecond).Seconds()
}

// print writes the summary: a table, or with asJSON one JSON object on one line.
func (s *summary) print(w io.Writer, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\tstep\tcreated\tupdated\tskipped\tduplicates\tfailed\t")
	for _, m := range models {
		for _, step := range []string{"import", "export", "webhook"} {
			c := s.steps[m+"/"+step]
			if c == nil {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t\n", m, step, c.Created, c.Updated, c.Skipped, c.Duplicates, c.Failed)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "webhooks: %d received, %d processed, %d rejected\n", s.Webhooks.Received, s.Webhooks.Processed, s.Webhooks.Rejected)
	fmt.Fprintf(w, "requests: %d, retries: %d, 429s: %d, %.1fs\n", s.Requests, s.Retries, s.Limited, s.Seconds)
	for _, e := range s.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	return nil
}

// progress reports long steps on stderr: a line redrawn in place on a terminal, plain
// lines otherwise (a log file, CI).
type progress struct {
	w       io.Writer
	tty     bool
	mu      sync.Mutex
	records map[string]int // model → records imported so far in this run (backend.WithProgress)
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// imported is the backend's progress hook: model's import has committed s so far.
func (p *progress) imported(model string, s importer.Summary) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.records == nil {
		p.records = map[string]int{}
	}
	p.records[model] = s.Total()
}

// counts is the per-model part of a running line ("product 1250, customer 400; "), in
// the order models are synced.
func (p *progress) counts() string {
	var b strings.Builder
	for _, m := range models {
		if n, ok := p.records[m]; ok {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %d", m, n)
		}
	}
	if b.Len() > 0 {
		b.WriteString("; ")
	}
	return b.String()
}

func (p *progress) note(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
}

// step is one running step.
type step struct {
	p     *progress
	name  string
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
}

// start begins a step; stats feeds the running line (requests, retries, 429s).
func (p *progress) start(name string, stats func() adapter.ClientStats) *step {
	s := &step{p: p, name: name, start: time.Now(), stop: make(chan struct{})}
	base := stats()
	every := 5 * time.Second // plain lines: one now and then, not a flood
	if p.tty {
		every = 100 * time.Millisecond
	}
	if !p.tty {
		p.note("%s…", name)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
			st := stats()
			p.mu.Lock()
			line := fmt.Sprintf("%s: %s%d requests, %d retries, %d×429, %s", name, p.counts(), st.Requests-base.Requests,
				st.Retries-base.Retries, st.RateLimited-base.RateLimited, time.Since(s.start).Round(100*time.Millisecond))
			if p.tty {
				fmt.Fprintf(p.w, "\r\033[K%s %s", spinner(time.Since(s.start)), line)
			} else {
				fmt.Fprintln(p.w, line)
			}
			p.mu.Unlock()
		}
	}()
	return s
}

// done ends the step with a closing line.
func (s *step) done(what string) {
	close(s.stop)
	s.wg.Wait()
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if s.p.tty {
		fmt.Fprint(s.p.w, "\r\033[K")
	}
	fmt.Fprintf(s.p.w, "%s: %s in %s\n", s.name, what, time.Since(s.start).Round(time.Millisecond))
}

func spinner(d time.Duration) string {
	frames := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
	return frames[int(d/(100*time.Millisecond))%len(frames)]
}

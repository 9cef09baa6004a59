package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/connkit/connkit/apisync"
	"github.com/connkit/connkit/synclog"
)

const validateUsage = `Usage:
  connkit validate --config DIR [--json]

Check every apisync config file (.json, .yaml, .yml) in DIR, or one file: syntax, fields
and their values, and what configs must agree on (unique names, one config per inbound
method and path). Each problem is printed on its own line as file:line: field: problem.
When every config is valid, they are listed. The exit status is 1 when any is invalid.

--json writes one JSON object: {"valid": bool, "configs": [{"name", "file",
"direction", "model", "methods", "target"}], "problems": [{"file", "config", "line",
"field", "problem"}]}.
`

func runValidate(ctx context.Context, e *env, args []string) error {
	f := newFlags("validate", validateUsage)
	config := f.String("config", "", "a directory (or file) of apisync configs (required)")
	asJSON := f.jsonFlag("write the result as one JSON object")
	if err := f.parseNoArgs(e.stdout, args); err != nil {
		return err
	}
	if *config == "" {
		return usagef(f.cmd, "--config is required")
	}
	cfgs, err := apisync.Load(*config)
	problems := configProblems(err)
	if *asJSON {
		out := struct {
			Valid    bool            `json:"valid"`
			Configs  []configSummary `json:"configs"`
			Problems []problem       `json:"problems"`
		}{Valid: err == nil, Configs: []configSummary{}, Problems: problems}
		for _, c := range cfgs {
			out.Configs = append(out.Configs, summarize(c))
		}
		if out.Problems == nil {
			out.Problems = []problem{}
		}
		if werr := writeJSON(e.stdout, out); werr != nil {
			return werr
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "connkit: %d problem(s) in the configs\n", len(problems))
			return errReported
		}
		return nil
	}
	if err != nil {
		return reportProblems(e.stderr, problems)
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "NAME\tDIRECTION\tMODEL\tMETHODS\tTARGET\tFILE")
	for _, c := range cfgs {
		s := summarize(c)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", clean(s.Name), s.Direction, clean(s.Model),
			clean(strings.Join(s.Methods, ",")), clean(s.Target), clean(s.File))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "connkit: %d config(s) valid\n", len(cfgs))
	return nil
}

// problem is one thing wrong with a config file.
type problem struct {
	File    string `json:"file"`
	Config  string `json:"config"`
	Line    int    `json:"line"`
	Field   string `json:"field"`
	Problem string `json:"problem"`
}

// String is the problem as a compiler would print it: file:line: field: problem.
func (p problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteString(":" + strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	} else if p.Config != "" {
		fmt.Fprintf(&b, "config %q: ", p.Config)
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Problem)
	return b.String()
}

// configProblems flattens Load's error (errors joined, each a *ConfigError or an I/O
// error) into one problem per field.
func configProblems(err error) []problem {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []problem
		for _, e := range j.Unwrap() {
			out = append(out, configProblems(e)...)
		}
		return out
	}
	var ce *apisync.ConfigError
	if !errors.As(err, &ce) {
		return []problem{{Problem: err.Error()}}
	}
	if len(ce.Fields) == 0 {
		return []problem{{File: ce.File, Config: ce.Config, Problem: ce.Error()}}
	}
	out := make([]problem, 0, len(ce.Fields))
	for _, f := range ce.Fields {
		out = append(out, problem{File: ce.File, Config: ce.Config, Line: f.Line, Field: f.Field, Problem: f.Problem})
	}
	return out
}

// reportProblems prints the problems on w, one a line, and returns errReported.
func reportProblems(w io.Writer, problems []problem) error {
	files := map[string]bool{}
	for _, p := range problems {
		fmt.Fprintln(w, clean(p.String()))
		if p.File != "" {
			files[p.File] = true
		}
	}
	if len(files) == 0 {
		fmt.Fprintf(w, "connkit: %d problem(s) loading the configs\n", len(problems))
	} else {
		fmt.Fprintf(w, "connkit: %d problem(s) in %d config file(s)\n", len(problems), len(files))
	}
	return errReported
}

// configSummary describes one valid config.
type configSummary struct {
	Name      string   `json:"name"`
	File      string   `json:"file"`
	Direction string   `json:"direction"`
	Model     string   `json:"model"`
	Methods   []string `json:"methods"`
	// Target is the out config's URL (secrets redacted) or the in config's path.
	Target string `json:"target"`
}

func summarize(c apisync.Config) configSummary {
	s := configSummary{Name: c.Name, File: c.Source, Direction: string(c.Direction), Model: c.Model, Methods: c.Methods, Target: c.Path}
	if c.Direction == apisync.Out {
		s.Target = configRedactor(c).URL(c.URL)
	}
	return s
}

// configRedactor redacts the default secret names plus the config's own credentials,
// wherever they appear.
func configRedactor(c apisync.Config) *synclog.Redactor {
	r := synclog.NewRedactor()
	r.AddSecrets(c.Auth.Password, c.Auth.Token, c.Auth.APIKey)
	return r
}

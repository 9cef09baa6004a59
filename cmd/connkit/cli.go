package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/connkit/connkit/sqlstore"
)

// Exit codes.
const (
	exitOK      = 0 // the command did what it was asked
	exitFailure = 1 // it ran and failed: invalid configs, failed records, an unreachable database
	exitUsage   = 2 // it was asked wrongly: unknown command or flag, missing or bad flag value
)

// defaultDB is the store every command opens when --db is not given.
const defaultDB = "connkit.db"

// env is what a command reads and writes besides its arguments.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
}

// command is one subcommand.
type command struct {
	name, summary string
	run           func(ctx context.Context, e *env, args []string) error
}

// commands lists the subcommands in the order the top-level help shows them.
var commands = []command{
	{"serve", "serve inbound apisync configs over HTTP", runServe},
	{"push", "push records through one outbound apisync config", runPush},
	{"validate", "check apisync config files", runValidate},
	{"logs", "show the audit log", runLogs},
	{"records", "list, get, import and export the app's records", runRecords},
	{"bindings", "list bindings and retry failed ones", runBindings},
	{"deliveries", "list, show and purge stored webhook deliveries", runDeliveries},
}

const topUsage = `connkit runs config-driven connectors (apisync) and inspects a connkit store.

Usage:
  connkit <command> [flags] [arguments]

Commands:
%s
Every command takes --help. The store is a SQLite file (--db, default %q, created on
first use; a postgres:// URL works too). Exit status: 0 ok, 1 failure, 2 usage error.
`

// run is the whole program: it returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now}
	return e.main(ctx, args)
}

func (e *env) main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, "connkit: no command given\n\n")
		e.topHelp(e.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && name == "help" { // "connkit help logs" is "connkit logs --help"
			return e.main(ctx, []string{args[1], "--help"})
		}
		e.topHelp(e.stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name == name {
			return e.exit(name, c.run(ctx, e, args[1:]))
		}
	}
	fmt.Fprintf(e.stderr, "connkit: unknown command %q\nRun 'connkit --help' for the list of commands.\n", clean(name))
	return exitUsage
}

func (e *env) topHelp(w io.Writer) {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, topUsage, b.String(), defaultDB)
}

// exit turns a command's error into the exit code, reporting it on stderr.
func (e *env) exit(cmd string, err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "connkit: %s\nRun 'connkit %s --help' for usage.\n", clean(err.Error()), ue.cmd)
		return exitUsage
	case errors.Is(err, errReported):
		return exitFailure
	default:
		fmt.Fprintf(e.stderr, "connkit: %s\n", clean(err.Error()))
		return exitFailure
	}
}

// subcommand is one subcommand of a command with several (records, bindings, deliveries).
type subcommand struct {
	name string
	run  func(ctx context.Context, e *env, args []string) error
}

// runSub runs the subcommand args[0] of cmd, or prints usage for a help flag.
func runSub(ctx context.Context, e *env, cmd, usage string, subs []subcommand, args []string) error {
	names := make([]string, len(subs))
	for i, sc := range subs {
		names[i] = sc.name
	}
	want := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	if len(args) == 0 {
		return usagef(cmd, "%s needs a subcommand: %s", cmd, want)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stdout, usage)
		return errHelpShown
	}
	for _, sc := range subs {
		if sc.name == args[0] {
			return sc.run(ctx, e, args[1:])
		}
	}
	return usagef(cmd, "unknown %s subcommand %q: want %s", cmd, args[0], want)
}

// listOut writes the items of seq as JSON lines (asJSON) or as a table under header, one
// row per item, and says on stderr when nothing matched. what names the items in messages.
func listOut[T any](e *env, seq iter.Seq2[T, error], asJSON bool, what, header string, toJSON func(T) any, row func(T) string) error {
	tw := newTable(e.stdout)
	if !asJSON {
		fmt.Fprintln(tw, header)
	}
	n := 0
	for v, err := range seq {
		if err != nil {
			tw.Flush()
			return fmt.Errorf("list %s: %w", what, err)
		}
		n++
		if asJSON {
			if err := writeJSON(e.stdout, toJSON(v)); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintln(tw, row(v))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if n == 0 && !asJSON {
		fmt.Fprintf(e.stderr, "connkit: no %s match\n", what)
	}
	return nil
}

// usageError is a command called wrongly: exit status 2.
type usageError struct {
	cmd string // the command path, for the help hint: "records import"
	msg string
}

func (u *usageError) Error() string { return u.msg }

func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// errHelpShown ends a command whose help was asked for: exit status 0.
var errHelpShown = errors.New("help shown")

// errReported ends a command that failed and already said why on stderr: exit status 1.
var errReported = errors.New("failure reported")

// flags is a subcommand's flag set with its help text.
type flags struct {
	*flag.FlagSet
	cmd   string // "records import"
	usage string // synopsis and description, before the flag list
}

func newFlags(cmd, usage string) *flags {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by exit; help by help
	return &flags{FlagSet: fs, cmd: cmd, usage: usage}
}

// parse parses args, letting flags and positional arguments mix ("get 7 --json"), and
// returns the positional arguments. --help prints the help to out and returns
// errHelpShown; a bad flag is a usage error.
func (f *flags) parse(out io.Writer, args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.help(out)
				return nil, errHelpShown
			}
			return nil, usagef(f.cmd, "%s", flagError(err))
		}
		args = f.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseNoArgs parses args for a command that takes flags only: any positional argument
// is a usage error.
func (f *flags) parseNoArgs(out io.Writer, args []string) error {
	pos, err := f.parse(out, args)
	if err == nil && len(pos) > 0 {
		err = usagef(f.cmd, "unexpected argument %q", pos[0])
	}
	return err
}

// flagError rewords the flag package's errors in the -- spelling the help uses.
func flagError(err error) string {
	msg := err.Error()
	msg = strings.Replace(msg, "flag provided but not defined: -", "unknown flag --", 1)
	msg = strings.Replace(msg, "flag needs an argument: -", "flag needs a value: --", 1)
	msg = strings.Replace(msg, " for flag -", " for flag --", 1)
	return msg
}

func (f *flags) help(w io.Writer) {
	fmt.Fprint(w, f.usage)
	if !strings.HasSuffix(f.usage, "\n") {
		fmt.Fprintln(w)
	}
	first := true
	f.VisitAll(func(fl *flag.Flag) {
		if first {
			fmt.Fprintln(w, "\nFlags:")
			first = false
		}
		typ, usage := flag.UnquoteUsage(fl)
		line := "  --" + fl.Name
		if typ != "" {
			line += " " + typ
		}
		fmt.Fprintf(w, "%s\n      %s", line, usage)
		if fl.DefValue != "" && fl.DefValue != "false" && fl.DefValue != "0" {
			fmt.Fprintf(w, " (default %s)", fl.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// dbFlag adds --db.
func (f *flags) dbFlag() *string {
	return f.String("db", defaultDB, "the connkit store: a SQLite file (created on first use) or a postgres:// URL")
}

// jsonFlag adds --json; usage says what it writes.
func (f *flags) jsonFlag(usage string) *bool {
	return f.Bool("json", false, usage)
}

// openDB opens the store named by --db, creating and migrating it on first use.
func openDB(ctx context.Context, dsn string) (*sqlstore.DB, error) {
	if dsn == "" {
		return nil, errors.New("--db is empty")
	}
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open the store %s: %w", redactDSN(dsn), err)
	}
	return db, nil
}

// redactDSN hides a password in a postgres:// URL before it is printed.
func redactDSN(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	at := strings.LastIndex(rest, "@")
	slash := strings.Index(rest, "/")
	if at < 0 || (slash >= 0 && slash < at) {
		return dsn
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return dsn
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// writeJSON writes v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// newTable returns a tabwriter for human-readable tables.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// clean makes untrusted text safe for one terminal cell or line: control characters
// (escape sequences a remote API could send to a terminal, newlines, tabs that would
// break a table) and invalid UTF-8 are written as Go escapes.
func clean(s string) string {
	if !needsClean(s, false) {
		return s
	}
	return escape(s, false)
}

// cleanBlock is clean for multi-line text such as a body: newlines and tabs stay.
func cleanBlock(s string) string {
	if !needsClean(s, true) {
		return s
	}
	return escape(s, true)
}

func needsClean(s string, block bool) bool {
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) && !(block && (r == '\n' || r == '\t')) {
			return true
		}
		if r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r) {
			return true
		}
	}
	return false
}

func escape(s string, block bool) string {
	var b strings.Builder
	for i, w := 0, 0; i < len(s); i += w {
		r, size := utf8.DecodeRuneInString(s[i:])
		w = size
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case block && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r):
			q := fmt.Sprintf("%+q", string(r))
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
	}
	return b.String()
}

// cut shortens s to at most n runes for a table cell, marking the cut with "…".
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// parseTime reads a --since/--until value: RFC 3339 ("2026-12-07T10:00:00Z"), a date
// ("2026-12-07", midnight UTC), a date and time without zone (UTC), or a duration ago
// ("90m", "24h").
func parseTime(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration ago must not be negative", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2026-12-07T10:00:00Z), a date (2026-12-07) or a duration ago (90m, 24h)", s)
}

// isTerminal reports whether w is a terminal (for progress that redraws one line).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// closeStore closes db when a command ends, and makes a failure to close (audit entries
// that could not be written, for one) the command's error unless it already has one.
func closeStore(db *sqlstore.DB, err *error) {
	if cerr := db.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("close the store: %w", cerr)
	}
}

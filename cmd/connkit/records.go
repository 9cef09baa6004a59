package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/sqlstore"
)

const recordsUsage = `Usage:
  connkit records list   --model M [--limit N] [--json]
  connkit records get    --model M ID [--json]
  connkit records import --model M [--file F] [--key FIELD] [--json]
  connkit records export --model M [--file F]

Work on the app's records that connkit keeps in the store (sqlstore.Records: one table
per model, each record a JSON object with an ID "1", "2", … in creation order). apisync
configs read and write the same tables.

Run 'connkit records <subcommand> --help' for each subcommand's flags.
`

func runRecords(ctx context.Context, e *env, args []string) error {
	return runSub(ctx, e, "records", recordsUsage, []subcommand{{"list", recordsList}, {"get", recordsGet}, {"import", recordsImport}, {"export", recordsExport}}, args)
}

// record is one record in `records list --json` and `records get --json`.
type record struct {
	ID        string          `json:"id"`
	Version   int64           `json:"version"`
	CreatedAt string          `json:"created_at"`
	UpdatedAt string          `json:"updated_at"`
	Data      json.RawMessage `json:"data"`
}

func openRecords(ctx context.Context, dsn, model string) (*sqlstore.DB, *sqlstore.RecordStore[json.RawMessage], error) {
	db, err := openDB(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	s, err := sqlstore.Records[json.RawMessage](ctx, db, model)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, s, nil
}

func modelFlag(f *flags) *string {
	return f.String("model", "", "the model whose records to use (required)")
}

func needModel(f *flags, model string) error {
	if model == "" {
		return usagef(f.cmd, "--model is required")
	}
	return nil
}

func recordsList(ctx context.Context, e *env, args []string) (err error) {
	f := newFlags("records list", `Usage:
  connkit records list --model M [--limit N] [--json]

List a model's records in ID order. --json writes one JSON object per line:
{"id", "version", "created_at", "updated_at", "data"}.
`)
	dsn := f.dbFlag()
	model := modelFlag(f)
	limit := f.Int("limit", 0, "list at most this many records (0: all)")
	asJSON := f.jsonFlag("write JSON lines instead of a table")
	if err := f.parseNoArgs(e.stdout, args); err != nil {
		return err
	}
	if err := needModel(f, *model); err != nil {
		return err
	}
	if *limit < 0 {
		return usagef(f.cmd, "--limit must not be negative, got %d", *limit)
	}
	db, s, err := openRecords(ctx, *dsn, *model)
	if err != nil {
		return err
	}
	defer closeStore(db, &err)

	tw := newTable(e.stdout)
	if !*asJSON {
		fmt.Fprintln(tw, "ID\tVERSION\tUPDATED\tDATA")
	}
	n, bad := 0, 0
	for ent, err := range s.All(ctx) {
		if errors.Is(err, sqlstore.ErrCorruptRecord) { // say so and go on: one bad row hides nothing else
			fmt.Fprintf(e.stderr, "connkit: %s\n", clean(err.Error()))
			bad++
			continue
		}
		if err != nil {
			tw.Flush()
			return fmt.Errorf("list records of model %q: %w", *model, err)
		}
		if *asJSON {
			if err := writeJSON(e.stdout, toRecord(ent)); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", ent.ID, ent.Version, ent.UpdatedAt.UTC().Format(time.DateTime),
				clean(cut(string(ent.Value), 80)))
		}
		n++
		if *limit > 0 && n >= *limit {
			break
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("%d record(s) of model %q do not decode (listed above); the others were listed", bad, *model)
	}
	return nil
}

func toRecord(e sqlstore.Entry[json.RawMessage]) record {
	return record{ID: e.ID, Version: e.Version, CreatedAt: e.CreatedAt.UTC().Format(time.RFC3339Nano),
		UpdatedAt: e.UpdatedAt.UTC().Format(time.RFC3339Nano), Data: e.Value}
}

func recordsGet(ctx context.Context, e *env, args []string) (err error) {
	f := newFlags("records get", `Usage:
  connkit records get --model M ID [--json]

Print one record as indented JSON. --json writes one JSON object:
{"id", "version", "created_at", "updated_at", "data"}.
`)
	dsn := f.dbFlag()
	model := modelFlag(f)
	asJSON := f.jsonFlag("write one JSON object with the record's metadata")
	pos, err := f.parse(e.stdout, args)
	if err != nil {
		return err
	}
	if err := needModel(f, *model); err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef(f.cmd, "records get takes one record ID, got %d arguments", len(pos))
	}
	id := pos[0]
	db, s, err := openRecords(ctx, *dsn, *model)
	if err != nil {
		return err
	}
	defer closeStore(db, &err)

	if !*asJSON {
		v, err := s.Get(ctx, id)
		if errors.Is(err, local.ErrNotFound) {
			return fmt.Errorf("record %q of model %q not found", id, *model)
		}
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := json.Indent(&buf, v, "", "  "); err != nil {
			return fmt.Errorf("record %q of model %q: %w", id, *model, err)
		}
		buf.WriteByte('\n')
		_, err = e.stdout.Write([]byte(cleanBlock(buf.String())))
		return err
	}
	ent, err := findRecord(ctx, db, s, id)
	if err != nil {
		return fmt.Errorf("record %q of model %q: %w", id, *model, err)
	}
	return writeJSON(e.stdout, toRecord(ent))
}

// findRecord reads one record with its metadata, which RecordStore.Get does not return:
// from the model's table (RecordStore.Table), whose times are documented as integer
// microseconds since the epoch on SQLite and timestamptz on Postgres.
func findRecord(ctx context.Context, db *sqlstore.DB, s *sqlstore.RecordStore[json.RawMessage], id string) (sqlstore.Entry[json.RawMessage], error) {
	v, err := s.Get(ctx, id)
	if errors.Is(err, local.ErrNotFound) {
		return sqlstore.Entry[json.RawMessage]{}, errors.New("not found")
	}
	if err != nil {
		return sqlstore.Entry[json.RawMessage]{}, err
	}
	ent := sqlstore.Entry[json.RawMessage]{ID: id, Value: v}
	q := `SELECT version, created_at, updated_at FROM ` + s.Table() + ` WHERE id = ?`
	if db.Dialect() == sqlstore.Postgres {
		q = strings.Replace(q, "?", "$1", 1)
		err = db.SQL().QueryRowContext(ctx, q, id).Scan(&ent.Version, &ent.CreatedAt, &ent.UpdatedAt)
	} else {
		var c, u int64
		err = db.SQL().QueryRowContext(ctx, q, id).Scan(&ent.Version, &c, &u)
		ent.CreatedAt, ent.UpdatedAt = time.UnixMicro(c).UTC(), time.UnixMicro(u).UTC()
	}
	if errors.Is(err, sql.ErrNoRows) { // deleted between the two reads
		return ent, errors.New("not found")
	}
	if err != nil {
		return ent, fmt.Errorf("read its metadata: %w", err)
	}
	return ent, nil
}

// maxLine bounds one JSON line of an import.
const maxLine = 16 << 20

func recordsImport(ctx context.Context, e *env, args []string) (err error) {
	f := newFlags("records import", `Usage:
  connkit records import --model M [--file F] [--key FIELD] [--json]

Import JSON lines into a model: each non-empty line is one record, a JSON object (the
format 'records export' writes). The import is all or nothing: a line that is not a JSON
object (or lacks the --key field) stops it, names the line, and nothing is stored.

With --key FIELD, the field's value is the record's idempotency key: a record whose key
is already stored is not created again (nor updated), so an import can be re-run safely.

The import writes the model's table directly: apisync on_create triggers do not fire
(run 'connkit push' afterwards to send the imported records). Prints how
many records were created and how many were already there; --json writes
{"created": N, "existing": N}.
`)
	dsn := f.dbFlag()
	model := modelFlag(f)
	file := f.String("file", "-", "read the JSON lines from this file (- for stdin)")
	key := f.String("key", "", "a field of each record holding its idempotency key (gjson path)")
	asJSON := f.jsonFlag("write the counts as one JSON object")
	pos, err := f.parse(e.stdout, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(f.cmd, "unexpected argument %q (use --file to name the input)", pos[0])
	}
	if err := needModel(f, *model); err != nil {
		return err
	}
	in, name, closeIn, err := openInput(e, *file)
	if err != nil {
		return err
	}
	defer closeIn()

	db, s, err := openRecords(ctx, *dsn, *model)
	if err != nil {
		return err
	}
	defer closeStore(db, &err)

	var created, existing int
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		created, existing = 0, 0
		st := s.WithTx(tx)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 0, 64<<10), maxLine)
		line := 0
		for sc.Scan() {
			line++
			b := bytes.TrimSpace(sc.Bytes())
			if line == 1 {
				b = bytes.TrimPrefix(b, []byte("\ufeff"))
			}
			if len(b) == 0 {
				continue
			}
			if err := checkObject(b); err != nil {
				return fmt.Errorf("%s:%d: %w", name, line, err)
			}
			v := json.RawMessage(bytes.Clone(b))
			if *key == "" {
				if _, err := st.Create(ctx, v); err != nil {
					return fmt.Errorf("%s:%d: %w", name, line, err)
				}
				created++
				continue
			}
			k, err := recordKey(b, *key)
			if err != nil {
				return fmt.Errorf("%s:%d: %w", name, line, err)
			}
			_, isNew, err := st.CreateKeyed(ctx, k, v)
			if err != nil {
				return fmt.Errorf("%s:%d: %w", name, line, err)
			}
			if isNew {
				created++
			} else {
				existing++
			}
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return fmt.Errorf("%s:%d: line is longer than %d MiB", name, line+1, maxLine>>20)
			}
			return fmt.Errorf("read %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import into model %q: nothing was imported: %w", *model, err)
	}
	if *asJSON {
		return writeJSON(e.stdout, map[string]int{"created": created, "existing": existing})
	}
	fmt.Fprintf(e.stdout, "imported %d record(s) into model %q", created, *model)
	if *key != "" {
		fmt.Fprintf(e.stdout, " (%d already there)", existing)
	}
	fmt.Fprintln(e.stdout)
	return nil
}

// checkObject accepts exactly one JSON object.
func checkObject(b []byte) error {
	if !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v)
		return fmt.Errorf("not valid JSON: %v", err)
	}
	if b[0] != '{' {
		return fmt.Errorf("want a JSON object, got %s", gjson.ParseBytes(b).Type)
	}
	return nil
}

// recordKey reads the idempotency key at path: a non-empty string or a number.
func recordKey(b []byte, path string) (string, error) {
	r := gjson.GetBytes(b, path)
	switch {
	case !r.Exists():
		return "", fmt.Errorf("the key field %q is missing", path)
	case r.Type == gjson.String && r.Str != "":
		return r.Str, nil
	case r.Type == gjson.Number:
		return r.Raw, nil
	}
	return "", fmt.Errorf("the key field %q must be a non-empty string or a number, got %s", path, clean(cut(r.Raw, 40)))
}

// openInput opens --file ("-" is stdin).
func openInput(e *env, file string) (io.Reader, string, func(), error) {
	if file == "-" || file == "" {
		return e.stdin, "stdin", func() {}, nil
	}
	fh, err := os.Open(file)
	if err != nil {
		return nil, "", nil, err
	}
	return fh, file, func() { fh.Close() }, nil
}

func recordsExport(ctx context.Context, e *env, args []string) (err error) {
	f := newFlags("records export", `Usage:
  connkit records export --model M [--file F]

Write a model's records as JSON lines, in ID order: each line is one record's JSON
object, the format 'records import' reads. A record that does not decode is reported on
stderr and the export goes on; the exit status is then 1.
`)
	dsn := f.dbFlag()
	model := modelFlag(f)
	file := f.String("file", "-", "write to this file (- for stdout); it is replaced only when the export succeeds")
	pos, err := f.parse(e.stdout, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(f.cmd, "unexpected argument %q (use --file to name the output)", pos[0])
	}
	if err := needModel(f, *model); err != nil {
		return err
	}
	db, s, err := openRecords(ctx, *dsn, *model)
	if err != nil {
		return err
	}
	defer closeStore(db, &err)

	out := e.stdout
	var tmp *os.File
	if *file != "-" && *file != "" {
		// Write next to the target and rename at the end, so a failed export never
		// leaves a half-written file where a good one was.
		tmp, err = os.CreateTemp(filepath.Dir(*file), ".connkit-export-*")
		if err != nil {
			return err
		}
		defer func() {
			if tmp != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		out = tmp
	}
	w := bufio.NewWriter(out)
	n, bad := 0, 0
	for ent, err := range s.All(ctx) {
		if errors.Is(err, sqlstore.ErrCorruptRecord) {
			fmt.Fprintf(e.stderr, "connkit: %s\n", clean(err.Error()))
			bad++
			continue
		}
		if err != nil {
			w.Flush()
			return fmt.Errorf("export records of model %q: %w", *model, err)
		}
		w.Write(ent.Value)
		w.WriteByte('\n')
		n++
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("export records of model %q: %w", *model, err)
	}
	if bad > 0 {
		return fmt.Errorf("%d record(s) of model %q do not decode (listed above) and were not exported", bad, *model)
	}
	if tmp != nil {
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), *file); err != nil {
			return err
		}
		tmp = nil
		fmt.Fprintf(e.stderr, "connkit: exported %d record(s) of model %q to %s\n", n, *model, *file)
	}
	return nil
}

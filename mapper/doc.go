// Package mapper turns one side's record into the other's: an external JSON record into
// local values on import, local values into an external JSON payload on export. It is
// the Go counterpart of generic_connector's mapper components (direct mappings,
// @mapping, @only_create, @changed_by, children) and of BJ API Sync's field-mapping
// lines (plain, relational, Python script), with expressions in place of Python.
//
// # Entry points
//
// Build a mapper once, use it for every record (mappers are safe for concurrent use):
//
//	imp, err := mapper.NewImport("product.import", rules, mapper.WithResolver(binder))
//	values, err := imp.Map(ctx, recordJSON, mapper.Options{Create: true})
//
//	exp, err := mapper.NewExport("product.export", rules, mapper.WithResolver(binder))
//	payload, err := exp.Map(ctx, localValues, mapper.Options{Changed: []string{"name"}})
//
// [ParseSpec] reads a mapper from JSON or YAML ([Spec]); [Spec.Import] and [Spec.Export]
// build it.
//
// # Importer and exporter
//
// [ImportFunc] and [ExportFunc] turn mappers into the importer's DecodeFunc[T] and the
// exporter's EncodeFunc[T] for a Go type T (struct fields matched by `mapper` or `json`
// tags), with Options.Create, the record ID, the request data ([RequestFrom]) and, for
// export, the changed fields ([ChangedFrom]) filled in:
//
//	productImport, _ := mapper.NewImport("product", rules, mapper.WithResolver(binder))
//	imp, _ := importer.New(bindings, products, "shop", "product", mapper.ImportFunc[Product](productImport))
//
//	customerExport, _ := mapper.NewExport("customer", rules, mapper.WithResolver(binder),
//		mapper.ChangedFrom(changedFields))
//	exp, _ := exporter.New(client, bindings, customers, "crm", "customer", "/contacts",
//		mapper.ExportFunc[Customer](customerExport))
//
// A backend builds these for each declared model, with one external ID path given to
// both the importer and the mapper ([WithIDPath]), and wires [WithImportMissing] so that
// relations import their missing records.
//
// # Rules
//
// Rules run in order; each writes into the result:
//   - [Direct]: copy a value through [Converter]s ([String], [Int], [Float], [Bool],
//     [Time], [TimeIn], [FormatTime], [Enum], [EnumDefault], [Trim], [Lower], [Upper],
//     [Convert] for a Go func), with [Default] and [Required].
//   - [Func]: a Go func computing several values (OCA's @mapping).
//   - [Relation]: an ID of a related record through the [IDResolver] (the binder);
//     on import a missing one is imported first ([WithImportMissing]), skipped
//     ([SkipMissing]) or fails. [ImportMapper.Relations] and [ExportMapper.Relations]
//     list the related models: a mapper's dependencies, declared once.
//   - [Expr] (evaluate mode) and [Exec] (execute mode): expressions.
//   - [Children]: one-to-many lines with their own mapper.
//
// Any rule can be limited with [OnlyCreate] and [ChangedBy]. Unlike OCA's mappers,
// where a known list of changed fields also drops the direct mappings of unchanged
// fields, only rules marked ChangedBy depend on [Options].Changed here.
//
// Paths: on import, "from" is a gjson path ("variants.0.price",
// "items.#(sku==\"A\").qty") and "to" a flat local field; on export, "from" is a dotted
// local path that may cross related records ("partner_id.name", read through
// [WithRelated] with the models given by [Through], or through nested maps in the
// values) and "to" is an sjson path ("order.lines.0.sku").
//
// # Expressions
//
// Expressions use github.com/expr-lang/expr. They are compiled when the mapper is built
// (a syntax or type error is a build error, never a mapping error) and see:
//
//	record   the source record (external JSON object on import, local values on export)
//	values   the values mapped so far by earlier rules
//	request  Options.Request (BJ's request_data)
//	value    the value at the rule's source path, if it has one
//	create   Options.Create
//	field(p) one path of the source record, without decoding all of it (on export,
//	         related records are crossed with the rule's Through models)
//
// plus expr's built-ins (upper, lower, trim, split, replace, hasPrefix, len, sum, map,
// filter, now, date, duration, toJSON, fromJSON…) and b64encode, b64decode,
// parseTime(layout, s), formatTime(t, layout), today() and coalesce(a, b, …).
//
// Sandbox: expressions have no I/O functions, and the mapper checks each one when it is
// built: it may call those functions and the methods of time values (now().Year()),
// nothing else, so the methods of Go values found in local values are out of reach
// (string() and toJSON() still use their String and MarshalJSON, as converters do).
// expr has no loops; fixed limits bound what one expression can do: at most 1000 AST nodes
// (checked when the mapper is built) and, at run time, a memory budget of 100000 (expr's
// units: array elements, range sizes…), 1 MiB per string produced and 8 MiB in all, and
// 50ms per evaluation. A hostile expression fails with [ErrExpression] rather than
// hanging or exhausting the process. The Map context's cancellation stops an evaluation
// too.
//
// # Errors
//
// Map returns [*MappingError] naming mapper, rule, field and record, wrapping the cause
// ([ErrRequired], [ErrConvert], [ErrMissingDependency], [ErrExpression], the resolver's
// error…). With [CollectErrors], every failing rule of the record is reported
// (errors.Join). Building a mapper reports every invalid rule as a
// [*SpecError] with its position (and YAML line).
package mapper

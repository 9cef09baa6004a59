// Command shopify is a complete Shopify connector built with connkit: products (with
// their variants), customers and orders imported from a shop's REST Admin API into the
// app's SQLite database, local product changes and new products exported back, and the
// shop's webhooks received, verified and imported.
//
// With no flags it starts an embedded fake shop on loopback (connkittest/fakeshop: 2,000
// products, 1,000 customers, 3,000 orders, the real API's shapes and limits), so
//
//	go run ./examples/shopify
//
// works with no setup. Point it at a real shop with
//
//	SHOPIFY_TOKEN=shpat_… go run ./examples/shopify -base-url https://{shop}.myshopify.com/admin/api/2024-04
//
// Flags:
//
//	-base-url URL        the shop's Admin API root (default: the embedded fake)
//	-token T             the Admin API access token (default $SHOPIFY_TOKEN with -base-url)
//	-db PATH             the SQLite file (default: connkit-shopify.db in the OS temp dir)
//	-webhook-secret S    the secret webhooks are signed with (default $SHOPIFY_WEBHOOK_SECRET with -base-url)
//	-listen ADDR         serve webhooks at /webhooks/shopify until interrupted
//	-faults RATE         the embedded fake fails that fraction of requests
//	-json                print the summary as one JSON object on the last line
//
// A second run on the same -db with unchanged data creates nothing: imports resume from
// the stored watermark, and unchanged records are skipped in both directions.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "shopify:", err)
		os.Exit(1)
	}
}

// run is the whole program: main without the process around it, so tests run it
// in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	return o.run(ctx, stdout, stderr)
}

// errUsage reports bad flags (already printed with the usage).
var errUsage = errors.New("bad flags")

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("shopify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.baseURL, "base-url", "", "the shop's Admin API root, e.g. https://{shop}.myshopify.com/admin/api/2024-04 (default: an embedded fake shop)")
	fs.StringVar(&o.token, "token", "", "the Admin API access token (default $SHOPIFY_TOKEN with -base-url)")
	fs.StringVar(&o.dbPath, "db", "", "the SQLite file (default connkit-shopify.db in the OS temp dir)")
	fs.StringVar(&o.webhookSecret, "webhook-secret", "", "the secret the shop signs webhooks with (default $SHOPIFY_WEBHOOK_SECRET with -base-url)")
	fs.StringVar(&o.listen, "listen", "", "serve webhooks at `ADDR`/webhooks/shopify and keep running until interrupted")
	fs.Float64Var(&o.faults, "faults", 0, "make the embedded fake fail this fraction of requests (5xx, 429, resets)")
	fs.BoolVar(&o.json, "json", false, "print the summary as one JSON object on the last line of stdout")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "shopify: unexpected arguments %q\n", fs.Args())
		fs.Usage()
		return nil, errUsage
	}
	if o.faults < 0 || o.faults >= 1 {
		fmt.Fprintln(stderr, "shopify: -faults takes a fraction in [0, 1)")
		return nil, errUsage
	}
	if o.faults > 0 && o.baseURL != "" {
		fmt.Fprintln(stderr, "shopify: -faults applies to the embedded fake shop, not to -base-url")
		return nil, errUsage
	}
	return o, nil
}

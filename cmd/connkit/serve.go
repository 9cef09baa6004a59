package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/connkit/connkit/apisync"
)

const serveUsage = `Usage:
  connkit serve --config DIR [--db FILE] [--listen ADDR] [--enable-schedules]

Serve the inbound (direction: in) apisync configs in DIR over HTTP: each config's path
answers the methods it allows, authenticates the caller, maps the JSON body onto the
config's model and writes the records to the store. Every exchange goes to the audit log
('connkit logs'). The trigger jobs of the outbound configs (on_create, on_update,
on_delete: the pushes those writes cause) and their enabled schedules run in this process.

The address listened on is printed on stderr ("connkit: serving 2 inbound config(s) on
http://127.0.0.1:8080"). SIGINT or SIGTERM stops accepting connections and waits up to
--shutdown-timeout for the requests and jobs in flight; the exit status is then 0.
`

func runServe(ctx context.Context, e *env, args []string) (err error) {
	f := newFlags("serve", serveUsage)
	dsn := f.dbFlag()
	config := f.String("config", "", "a directory (or file) of apisync configs (required)")
	listen := f.String("listen", "127.0.0.1:8080", "the address to listen on, host:port (port 0 picks a free port)")
	grace := f.Duration("shutdown-timeout", 10*time.Second, "how long a shutdown waits for requests and jobs in flight")
	schedules := f.Bool("enable-schedules", false, "enable the schedule triggers of the outbound configs (kept in the store; they are disabled until enabled)")
	verbose := f.Bool("verbose", false, "log what the connectors do to stderr")
	if err := f.parseNoArgs(e.stdout, args); err != nil {
		return err
	}
	if *config == "" {
		return usagef(f.cmd, "--config is required")
	}
	if *grace <= 0 {
		return usagef(f.cmd, "--shutdown-timeout must be positive, got %s", *grace)
	}
	cfgs, err := apisync.Load(*config)
	if err != nil {
		return reportProblems(e.stderr, configProblems(err))
	}
	inbound, scheduled := 0, 0
	for _, c := range cfgs {
		if c.Direction == apisync.In {
			inbound++
		}
		if c.Triggers.Schedule != "" {
			scheduled++
		}
	}
	if inbound == 0 && scheduled == 0 {
		return fmt.Errorf("nothing to serve: %s has no inbound config (direction: in) and no schedule trigger", *config)
	}

	db, err := openDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer closeStore(db, &err)
	var opts []apisync.Option
	if *verbose {
		opts = append(opts, apisync.WithLogger(slog.New(slog.NewTextHandler(e.stderr, nil))))
	}
	s, err := apisync.Open(ctx, db, cfgs, opts...)
	if err != nil {
		return err
	}
	if *schedules {
		for _, c := range cfgs {
			if c.Triggers.Schedule == "" {
				continue
			}
			if err := s.EnableSchedule(ctx, c.Name); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "connkit: schedule of %q enabled (%s)\n", clean(c.Name), clean(c.Triggers.Schedule))
		}
	}

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	// The jobs run on a context of their own: ctx ends at the signal, and Stop then lets
	// them finish within the grace period.
	if err := s.Start(context.WithoutCancel(ctx)); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(e.stderr, "connkit: serving %d inbound config(s) on http://%s\n", inbound, ln.Addr())

	var serveErr error
	select {
	case <-ctx.Done():
		fmt.Fprintln(e.stderr, "connkit: shutting down")
	case serveErr = <-served:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), *grace)
	defer cancel()
	shutErr := srv.Shutdown(sctx)
	if serveErr == nil {
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	}
	stopErr := s.Stop(sctx)
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	if shutErr != nil {
		return fmt.Errorf("shut down: requests still running after %s: %w", *grace, shutErr)
	}
	if stopErr != nil {
		return fmt.Errorf("shut down: stop the jobs: %w", stopErr)
	}
	fmt.Fprintln(e.stderr, "connkit: stopped")
	return nil
}

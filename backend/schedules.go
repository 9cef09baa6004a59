package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/connkit/connkit/schedule"
)

type scheduleDecl struct{ name, spec, operation string }

// withSchedule declares the schedule of one Config.Schedules entry (see ScheduleConfig).
func withSchedule(name, spec, operation string) Option {
	return func(b *Backend) error {
		if name == "" || spec == "" || operation == "" {
			return errors.New("backend: a schedule needs a name, a spec and an operation")
		}
		for _, d := range b.schedules {
			if d.name == name {
				return fmt.Errorf("backend: schedule %q registered twice", name)
			}
		}
		b.schedules = append(b.schedules, scheduleDecl{name, spec, operation})
		return nil
	}
}

func (b *Backend) buildSchedules() error {
	b.scheduler = schedule.New(b.schedStore, schedule.WithLogger(b.logger))
	for _, d := range b.schedules {
		if _, err := b.operation(d.operation); err != nil {
			return fmt.Errorf("backend %q: schedule %q: %w", b.cfg.Name, d.name, err)
		}
		op := d.operation
		run := func(ctx context.Context, tick time.Time) error {
			_, err := b.Later().Sync(ctx, op)
			return err
		}
		if err := b.scheduler.Add(b.cfg.Name+"/"+d.name, d.spec, run); err != nil {
			return fmt.Errorf("backend %q: schedule %q: %w", b.cfg.Name, d.name, err)
		}
	}
	return nil
}

// Schedules returns the backend's scheduler: enable and disable schedules, read their
// status. Schedule names are prefixed with the backend's name and a slash.
func (b *Backend) Schedules() *schedule.Scheduler { return b.scheduler }

package backend

// WithScheduleForTest declares a schedule as one Config.Schedules entry does, for tests
// whose config is built by a shared helper.
var WithScheduleForTest = withSchedule

//go:build race

package importer_test

// raceEnabled shrinks the slow tests: modernc SQLite under the race detector is ~20x slower.
const raceEnabled = true

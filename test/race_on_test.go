//go:build race

package test

// raceDetector is set when the tests run with -race.
const raceDetector = true

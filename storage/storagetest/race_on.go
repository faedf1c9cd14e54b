//go:build race

package storagetest

// raceEnabled: the race detector shadows every heap byte the program
// touches, so RSS figures of a race build overstate the backend's own.
const raceEnabled = true

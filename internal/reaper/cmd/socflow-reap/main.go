//go:build linux

// Command socflow-reap runs the OpenCTI platform command under socflow's process-
// group reaper, so that no process the platform leaves behind (its init-lock child
// above all) outlives it. See package reaper.
//
//	socflow-reap --instance NAME --plan DIGEST [--grace DURATION] [--forward] -- COMMAND [ARG...]
package main

import (
	"os"

	"github.com/socflow/socflow/internal/reaper"
)

func main() {
	os.Exit(reaper.Main(os.Args[1:], os.Stdout, os.Stderr))
}

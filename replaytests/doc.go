// Package replaytests replays recorded workflow histories (testdata/*.json) against the
// current workflow code with the production DataConverter, so a change that would break
// running workflows fails the test suite instead of stalling deploys in production.
package replaytests

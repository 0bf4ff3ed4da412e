// Package workflowlint holds the test that lints the repository's GitHub Actions workflows
// (.github/workflows) with actionlint, so `make test` fails on a broken workflow.
package workflowlint

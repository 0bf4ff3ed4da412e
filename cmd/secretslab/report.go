package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"

	"github.com/secretslab/secretslab/reports"
)

// reportCmd: "secretslab report render FILE.json [--out DIR]".
func reportCmd(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "render" {
		return fmt.Errorf("report: want render (secretslab report render FILE.json [--out DIR])")
	}
	fs := flag.NewFlagSet("report render", flag.ContinueOnError)
	out := fs.String("out", "", "directory for junit.xml, report.md and report.html (default: the directory of FILE.json)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: secretslab report render FILE.json [--out DIR]")
		fs.PrintDefaults()
	}
	// Flags may come before or after FILE.json.
	var files []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(files) != 1 {
		fs.Usage()
		return fmt.Errorf("report render: want one FILE.json, got %d", len(files))
	}
	dir := *out
	if dir == "" {
		dir = filepath.Dir(files[0])
	}
	if err := reports.Render(files[0], dir); err != nil {
		return err
	}
	for _, name := range []string{reports.JUnitFile, reports.MarkdownFile, reports.HTMLFile} {
		fmt.Println(filepath.Join(dir, name))
	}
	return nil
}

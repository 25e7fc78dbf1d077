// dockercontext prints the files of a Docker build context, one path per line (relative, with
// forward slashes), as Docker computes it: the context directory minus what .dockerignore
// excludes, with the moby/patternmatcher module that Docker's CLI and BuildKit use for exactly
// this (ignorefile.ReadAll, then MatchesOrParentMatches for every path).
//
//	dockercontext DIR
//
// The tests use it to prove that every COPY source of the Dockerfile and every file the build
// stage reads is sent to the builder (operator/tests/e2e/image.rs).
package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: dockercontext DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "dockercontext:", err)
		os.Exit(1)
	}
}

func run(root string) error {
	var patterns []string
	if f, err := os.Open(filepath.Join(root, ".dockerignore")); err == nil {
		patterns, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return err
		}
	} else if !os.IsNotExist(err) {
		return err
	}
	matcher, err := patternmatcher.New(patterns)
	if err != nil {
		return err
	}
	return filepath.WalkDir(root, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		excluded, err := matcher.MatchesOrParentMatches(rel)
		if err != nil {
			return err
		}
		if entry.IsDir() {
			// A directory excluded with no exception pattern anywhere cannot hold an included
			// file (Docker skips it the same way).
			if excluded && !matcher.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		if !excluded {
			fmt.Println(rel)
		}
		return nil
	})
}

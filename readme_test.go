package conc

import (
	"go/scanner"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goIdents returns the identifiers in Go source text, scanned token by
// token, so that a fragment which does not parse (an abridged snippet with
// "...") is read as well as a whole file.
func goIdents(src []byte) map[string]bool {
	fset := token.NewFileSet()
	var s scanner.Scanner
	s.Init(fset.AddFile("", -1, len(src)), src, nil, 0)
	ids := make(map[string]bool)
	for {
		_, tok, lit := s.Scan()
		if tok == token.EOF {
			return ids
		}
		if tok == token.IDENT {
			ids[lit] = true
		}
	}
}

var readmeGoBlock = regexp.MustCompile("(?s)```go\n(.*?)```")

// TestReadmeSnippetsComeFromExamples: the README says every snippet is
// abridged from a runnable Example. So every identifier a snippet uses, the
// package's and the snippet's own names alike, must occur in an Example
// file; a snippet that invents a name no Example has is not abridged from
// one. Before the snippets were fixed, 26 names failed
// (issue 13 §3.9).
func TestReadmeSnippetsComeFromExamples(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	blocks := readmeGoBlock.FindAllSubmatch(readme, -1)
	require.NotEmpty(t, blocks)

	files, err := filepath.Glob("example_*_test.go")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	// The nested modules' Examples (natsbroker, ...) are runnable too, and
	// the README's section on them is abridged from those.
	nested, err := filepath.Glob("*/example*_test.go")
	require.NoError(t, err)
	files = append(files, nested...)
	inExamples := make(map[string]bool)
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		for id := range goIdents(src) {
			inExamples[id] = true
		}
	}

	var missing []string
	for _, b := range blocks {
		for id := range goIdents(b[1]) {
			if !inExamples[id] && !slices.Contains(missing, id) {
				missing = append(missing, id)
			}
		}
	}
	slices.Sort(missing)
	assert.Empty(t, missing, "README snippets use names that no example_*_test.go has")
}

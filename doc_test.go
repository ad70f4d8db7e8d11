package conc

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parsePackage parses the package's own (non-test) files with comments.
func parsePackage(t *testing.T) map[string]*ast.File {
	t.Helper()
	names, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	files := make(map[string]*ast.File)
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		require.NoError(t, err)
		f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
		require.NoError(t, err)
		files[name] = f
	}
	require.Contains(t, files, "doc.go")
	return files
}

// panicException matches a godoc sentence saying that a panic in user code
// does not become an error where the call's error would go: it crashes,
// reaches a caller, or is only counted.
var panicException = regexp.MustCompile(`(?i)\bpanic in\b[^.]*?\b(crash\w*|reaches|counted in|counts the call|leaves)\b`)

// TestPackageDocListsTheExceptionsToItsPanicPromise: the package doc
// promises that a panic in user code becomes a *PanicError. Every exported
// declaration whose own godoc states an exception must be named where the
// promise is made. Before the list, FromSeq documented a crash and PerKey a
// panic reaching Allow's caller, and doc.go named neither (issue 13 §1.7).
func TestPackageDocListsTheExceptionsToItsPanicPromise(t *testing.T) {
	files := parsePackage(t)
	promise := strings.Join(strings.Fields(files["doc.go"].Doc.Text()), " ")
	var found []string
	for _, f := range files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || !fd.Name.IsExported() || fd.Doc == nil {
				continue
			}
			text := strings.Join(strings.Fields(fd.Doc.Text()), " ")
			if panicException.MatchString(text) {
				found = append(found, fd.Name.Name)
				assert.Contains(t, promise, fd.Name.Name,
					"%s's godoc states an exception to the panic promise that doc.go does not list", fd.Name.Name)
			}
		}
	}
	// The test must be able to fail: it sees the exceptions that exist.
	assert.Subset(t, found, []string{"FromSeq", "PerKey", "LockAll", "OnResult", "OnStateChange", "IsFailure"})
}

// Package purity holds the test that keeps swarmtv's pure protocol cores
// pure: no sockets, files, goroutines, wall clock or global randomness, so
// the simulator and the real network run the same code and a seed replays
// a run exactly (DESIGN.md, "Layout").
package purity

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/swarmtv/swarmtv"

// cores are the pure packages, relative to the module root. A directory
// that does not exist yet is skipped, so the list can name cores before
// they are written.
var cores = []string{
	"internal/wire",
	"internal/swarm",
	"overlay",
	"chandelier",
	"nat/core",
}

// pureFiles are files of shell packages that hold pure logic (their
// package also holds I/O). They follow the same rules, except that they
// may use the media libraries' data types (gortsplib's pkg/description
// and pkg/format, which open no sockets) and other packages of the module.
var pureFiles = []string{
	"tracker/channel.go",
	"origin/chunker.go",
	"origin/fragment.go",
}

// forbiddenImports may not be imported by a core, nor anything under them.
var forbiddenImports = []string{
	"net",
	"os",
	"syscall",
	"unsafe",
	"math/rand", // the v1 package's functions use a global source
	"crypto/rand",
	"github.com/quic-go/quic-go",
	"github.com/bluenviron/gortsplib",
	"github.com/pion/stun",
	"github.com/pion/webrtc",
	"log",
	"log/slog",
}

// forbiddenCalls are package-level functions a core may not call.
var forbiddenCalls = map[string][]string{
	"time": {"Now", "Sleep", "Since", "Until", "After", "AfterFunc", "Tick", "NewTimer", "NewTicker"},
	// math/rand/v2: only rand.New and the source constructors, never
	// the global functions.
	"math/rand/v2": {"Int", "IntN", "Int32", "Int32N", "Int64", "Int64N", "Uint32", "Uint32N", "Uint64", "Uint64N", "UintN", "N", "Float32", "Float64", "Perm", "Shuffle", "NormFloat64", "ExpFloat64"},
}

func moduleRoot(t *testing.T) string {
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("module root not found from %s: %v", dir, err)
	}
	return dir
}

func isCore(path string) bool {
	rel, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return false
	}
	for _, c := range cores {
		if rel == c || strings.HasPrefix(rel, c+"/") {
			return true
		}
	}
	return false
}

func TestCoresArePure(t *testing.T) {
	root := moduleRoot(t)
	checked := 0
	for _, core := range cores {
		dir := filepath.Join(root, core)
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			continue
		}
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			checked++
			for _, problem := range checkFile(path) {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s: %s", rel, problem)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked == 0 {
		t.Fatal("no core files found: is the cores list right?")
	}
	for _, f := range pureFiles {
		path := filepath.Join(root, f)
		if _, err := os.Stat(path); err != nil {
			t.Errorf("pure file %s: %v", f, err)
			continue
		}
		for _, problem := range checkFileRules(path, true) {
			t.Errorf("%s: %s", f, problem)
		}
	}
}

// checkFile returns what makes one Go file of a core impure.
func checkFile(path string) []string { return checkFileRules(path, false) }

// mediaTypes are packages a pure file outside the cores may import.
var mediaTypes = []string{
	"github.com/bluenviron/gortsplib/v5/pkg/description",
	"github.com/bluenviron/gortsplib/v5/pkg/format",
}

// checkFileRules returns what makes one Go file impure; shellFile relaxes
// the import rules as pureFiles describes.
func checkFileRules(path string, shellFile bool) []string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	names := map[string]string{} // local name -> import path
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		// math/rand/v2 is fine: its seeded sources are how cores get
		// randomness; its global functions are caught as calls below.
		allowed := p == "math/rand/v2" || shellFile && slices.Contains(mediaTypes, p)
		for _, bad := range forbiddenImports {
			if !allowed && (p == bad || strings.HasPrefix(p, bad+"/")) {
				problems = append(problems, "imports "+p)
			}
		}
		if !shellFile && strings.HasPrefix(p, module+"/") && !isCore(p) {
			problems = append(problems, "imports non-core package "+p)
		}
		name := p[strings.LastIndex(p, "/")+1:]
		if p == "math/rand/v2" {
			name = "rand"
		}
		if imp.Name != nil {
			name = imp.Name.Name
		}
		names[name] = p
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			problems = append(problems, fset.Position(n.Pos()).String()+": starts a goroutine")
		case *ast.SelectorExpr:
			id, ok := n.X.(*ast.Ident)
			if !ok {
				return true
			}
			for _, fn := range forbiddenCalls[names[id.Name]] {
				if n.Sel.Name == fn {
					problems = append(problems, fset.Position(n.Pos()).String()+": uses "+names[id.Name]+"."+fn)
				}
			}
		}
		return true
	})
	return problems
}

// TestCheckerCatchesImpurity makes sure the checker itself can fail.
func TestCheckerCatchesImpurity(t *testing.T) {
	dir := t.TempDir()
	src := `package bad

import (
	"math/rand/v2"
	"net"
	clock "time"
)

var _ net.Conn

func f() {
	go func() {}()
	_ = clock.Now()
	_ = rand.IntN(3)
	_ = rand.New(rand.NewPCG(1, 2)).IntN(3)
}
`
	path := filepath.Join(dir, "bad.go")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(checkFile(path), "\n")
	if strings.Contains(got, "imports math/rand/v2") {
		t.Errorf("checker rejected the math/rand/v2 import itself:\n%s", got)
	}
	for _, want := range []string{"imports net", "starts a goroutine", "uses time.Now", "uses math/rand/v2.IntN"} {
		if !strings.Contains(got, want) {
			t.Errorf("checker missed %q; it found:\n%s", want, got)
		}
	}
	if strings.Count(got, "IntN") != 1 {
		t.Errorf("checker flagged a seeded source's method:\n%s", got)
	}
}

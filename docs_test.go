package repricer_test

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/repricer/repricer/connectors/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// A fenced block whose info string is "sh runnable" in README.md or
// docs/*.md is a command example that must run as written, from the
// repository root, on the bundled data, writing only under out/. Add
// "postgres" ("sh runnable postgres") for a block that uses the database in
// DATABASE_URL: it runs against a fresh database of the test server
// (pgtest), and is skipped when there is none.
type docBlock struct {
	file     string
	line     int
	postgres bool
	script   string
}

func runnableBlocks(t *testing.T, path string) []docBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []docBlock
	var cur *docBlock
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			info := strings.Fields(strings.TrimPrefix(line, "```"))
			if len(info) > 1 && info[0] == "sh" && slices.Contains(info[1:], "runnable") {
				cur = &docBlock{file: path, line: n, postgres: slices.Contains(info[1:], "postgres")}
			} else if len(info) > 0 || strings.TrimSpace(line) == "```" {
				// another block: skip to its end
				for sc.Scan() {
					n++
					if strings.HasPrefix(sc.Text(), "```") {
						break
					}
				}
			}
		case cur != nil && strings.HasPrefix(line, "```"):
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.script += line + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

// TestDocCommands runs every runnable block of each document in order (a
// block may use what an earlier one wrote), in a scratch folder holding
// testdata/, with the repricer binary built from this tree on the PATH. A
// block must succeed and leave nothing outside out/.
func TestDocCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	docs, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	docs = append([]string{"README.md"}, docs...)
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "repricer"), "./cmd/repricer")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	before := snapshot(t, filepath.Join(root, "testdata"))
	total := 0
	for _, doc := range docs {
		blocks := runnableBlocks(t, doc)
		total += len(blocks)
		if len(blocks) == 0 {
			continue
		}
		t.Run(doc, func(t *testing.T) {
			// state: the default ledger's folder; cache: the schedule images'
			work, state, cache := t.TempDir(), t.TempDir(), t.TempDir()
			if err := os.Symlink(filepath.Join(root, "testdata"), filepath.Join(work, "testdata")); err != nil {
				t.Fatal(err)
			}
			for _, b := range blocks {
				db := "" // no database unless the block needs one
				if b.postgres {
					db = pgtest.NewDatabase(t)
				}
				cmd := exec.Command("bash", "-euo", "pipefail", "-c", b.script)
				cmd.Dir = work
				cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
					"DATABASE_URL="+db, "REPRICER_LEDGER=", "XDG_STATE_HOME="+state, "XDG_CACHE_HOME="+cache)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%s:%d: %v\n%s\n%s", b.file, b.line, err, b.script, out)
				}
				entries, err := os.ReadDir(work)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range entries {
					if e.Name() != "testdata" && e.Name() != "out" {
						t.Errorf("%s:%d wrote %s outside out/", b.file, b.line, e.Name())
					}
				}
			}
		})
	}
	if total == 0 {
		t.Error("no runnable blocks found")
	}
	if after := snapshot(t, filepath.Join(root, "testdata")); !slices.Equal(before, after) {
		t.Error("the doc commands changed testdata/")
	}
}

// snapshot lists the files under dir with their sizes and times.
func snapshot(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %d %s", p, info.Size(), info.ModTime()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPricingReferences: code, docs and explain's output cite the pricing
// rules in docs/pricing.md, by a step it has or a heading it has, and
// nothing cites a rules file outside the repository.
func TestPricingReferences(t *testing.T) {
	rules, err := os.ReadFile("docs/pricing.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(rules), "\n") {
		if h, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " "); ok && strings.HasPrefix(line, "#") {
			slug := strings.Map(func(r rune) rune {
				switch {
				case r == ' ':
					return '-'
				case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
					return r
				}
				return -1
			}, strings.ToLower(h))
			anchors[slug] = true
		}
	}
	outside := regexp.MustCompile(`SPEC(\.md| ?§)`)
	step := regexp.MustCompile(`pricing\.md,? steps? (\d)`)
	anchor := regexp.MustCompile(`pricing\.md#([a-z0-9-]+)`)
	cited := 0
	err = filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (p == "out" || p == "bin" || strings.HasPrefix(d.Name(), ".")) && p != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !(strings.HasSuffix(p, ".go") || strings.HasSuffix(p, ".md") || strings.HasPrefix(p, "testdata/golden/explain/")) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		text := string(b)
		if p != "docs_test.go" && outside.MatchString(text) {
			t.Errorf("%s cites %q; cite docs/pricing.md", p, outside.FindString(text))
		}
		for _, m := range step.FindAllStringSubmatch(text, -1) {
			cited++
			if !strings.Contains(string(rules), "### Step "+m[1]+":") {
				t.Errorf("%s cites %q; docs/pricing.md has no step %s", p, m[0], m[1])
			}
		}
		for _, m := range anchor.FindAllStringSubmatch(text, -1) {
			cited++
			if !anchors[m[1]] {
				t.Errorf("%s links %q; docs/pricing.md has no such heading", p, m[0])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if cited == 0 {
		t.Error("nothing cites docs/pricing.md")
	}
}

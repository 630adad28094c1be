package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestVersion(t *testing.T) {
	status, stdout, stderr := runCLI(t, "--version")
	if status != 0 || !strings.HasPrefix(stdout, "repricer version ") {
		t.Fatalf("--version: status %d, stdout %q, stderr %q", status, stdout, stderr)
	}
	main := debug.Module{Path: "github.com/repricer/repricer", Version: "v1.4.0"}
	for _, tt := range []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no build info", nil, false, "unknown"},
		{"no vcs stamp", &debug.BuildInfo{Main: debug.Module{Path: main.Path}}, true, "(devel)"},
		{"release", &debug.BuildInfo{Main: main, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0799e2e1c3a4b5c6d7e8f90123456789abcdef01"}, {Key: "vcs.modified", Value: "false"}}}, true, "v1.4.0 (commit 0799e2e1c3a4)"},
		{"modified tree", &debug.BuildInfo{Main: main, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}}}, true, "v1.4.0 (commit abc, modified)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := version(tt.info, tt.ok); got != tt.want {
				t.Errorf("version = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"top level", []string{"repricee"}, `unknown command "repricee" for "repricer". Did you mean "reprice"?`},
		{"subcommand", []string{"contracts", "exprot"}, `unknown command "exprot" for "repricer contracts". Did you mean "export"?`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, _, stderr := runCLI(t, tt.args...)
			if status != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("status %d, stderr %q; want 2 and %q", status, stderr, tt.want)
			}
		})
	}
	for _, args := range [][]string{nil, {"contracts"}} {
		if status, stdout, stderr := runCLI(t, args...); status != 0 || !strings.Contains(stdout, "COMMANDS:") {
			t.Errorf("%q: status %d, want 0 and the help; stdout %q stderr %q", args, status, stdout, stderr)
		}
	}
}

func TestMapUnknownCanonical(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	status, _, stderr := runCLI(t, "reprice", "--contracts", sampleContracts, "--claims", sampleClaims, "--out", out, "--map", "member=mbr")
	if status != 2 || !strings.Contains(stderr, `"member" is not a canonical column`) || !strings.Contains(stderr, "member_id") {
		t.Errorf("status %d, stderr %q; want 2 naming the canonical columns", status, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("the refused run created --out")
	}
}

func TestCompareToCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	out, ledger := filepath.Join(dir, "out"), filepath.Join(dir, "ledger.jsonl")
	status, _, stderr := runCLI(t, "reprice", "--contracts", sampleContracts, "--claims", sampleClaims,
		"--out", out, "--ledger", ledger, "--compare-to", filepath.Join(dir, "no-such-run"))
	if status != 2 || !strings.Contains(stderr, "no-such-run") {
		t.Errorf("status %d, stderr %q; want 2 naming the folder", status, stderr)
	}
	for _, p := range []string{out, ledger} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("the refused run wrote %s", p)
		}
	}
}

// TestHelpText reads the --help of every command: each has a usage line
// and (when it runs something) a description, and no flag line shows a
// stray backtick or two defaults.
func TestHelpText(t *testing.T) {
	app := newApp(strings.NewReader(""), io.Discard, io.Discard)
	twoDefaults := regexp.MustCompile(`\(default: [^)]*\).*\(default: `)
	var walk func(path []string, cmds []*cli.Command)
	walk = func(path []string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Name == "help" {
				continue
			}
			p := append(append([]string(nil), path...), c.Name)
			t.Run(strings.Join(p, "_"), func(t *testing.T) {
				if c.Usage == "" {
					t.Error("no usage line")
				}
				if len(c.Subcommands) == 0 && c.Description == "" {
					t.Error("no description")
				}
				status, stdout, stderr := runCLI(t, append(p, "--help")...)
				if status != 0 {
					t.Fatalf("--help: status %d: %s", status, stderr)
				}
				for _, line := range strings.Split(stdout, "\n") {
					if twoDefaults.MatchString(line) {
						t.Errorf("two defaults: %s", line)
					}
					if strings.HasPrefix(strings.TrimSpace(line), "--") && strings.Contains(line, "`") {
						t.Errorf("stray backtick: %s", line)
					}
				}
			})
			walk(p, c.Subcommands)
		}
	}
	walk(nil, app.Commands)
}

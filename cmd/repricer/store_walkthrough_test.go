package main

import (
	"bytes"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/repricer/repricer/connectors/postgres/pgtest"
)

// readmeBlock returns the first ```sh block after heading in the README.
func readmeBlock(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no %q", heading)
	}
	s = s[i:]
	start := strings.Index(s, "```sh\n")
	end := strings.Index(s[start+6:], "```")
	if start < 0 || end < 0 {
		t.Fatalf("no sh block under %q", heading)
	}
	return s[start+6 : start+6+end]
}

// TestREADMEStoreWalkthrough runs the README's PostgreSQL block as written,
// in a shell, against a throwaway database (DATABASE_URL), with repricer on
// PATH: it must end in a store run that prices the sample exactly like a
// folder run over the rows the store accepted, with every refused row
// reported.
func TestREADMEStoreWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the command line against a database")
	}
	block := readmeBlock(t, "## Contracts in PostgreSQL")
	url := pgtest.NewDatabase(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	shim := "#!/bin/sh\n" + envAsMain + "=1 exec " + os.Args[0] + " -test.run='^$' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "repricer"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	testdata, err := filepath.Abs("../../testdata")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(testdata, filepath.Join(dir, "testdata")); err != nil {
		t.Fatal(err)
	}
	// As a person pastes it: one command after another, whatever each
	// exits with (the import exits 5: it left rows out).
	cmd := exec.Command("bash", "-c", block)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DATABASE_URL="+url, "PATH="+bin+":"+os.Getenv("PATH"), "XDG_STATE_HOME="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the block failed: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "7 refused row(s) left out") || !strings.Contains(out.String(), "rates.csv:61: rate 14005") {
		t.Errorf("the import did not list the refused rows by FILE:LINE:\n%s", out.String())
	}
	f, err := os.Open(filepath.Join(dir, "out", "refused.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != 8 {
		t.Fatalf("refused.csv: %d records, %v; want a header and 7 rows", len(recs), err)
	}

	// The reference: a folder run over the rows the store accepts, run the
	// same way (same relative claim path, so source_file agrees).
	cleanSample(t, filepath.Join(dir, "clean"))
	ref := exec.Command(filepath.Join(bin, "repricer"), "reprice", "--contracts", "clean", "--claims", "testdata/sample/claims.csv", "--out", "out/ref", "-q", "--ledger", "none")
	ref.Dir, ref.Env = dir, cmd.Env
	if b, err := ref.CombinedOutput(); err != nil {
		t.Fatalf("folder run: %v\n%s", err, b)
	}
	read := func(run, name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, "out", run, name))
		if err != nil || len(b) == 0 {
			t.Fatalf("%s/%s: %v", run, name, err)
		}
		return b
	}
	// The store prices like the folder of the rows it accepted, and like
	// the folder it exports; the schedule issues agree with the exported
	// folder's (same row order) but for where a row lives by nature (a file
	// of the folder, postgres:contracts for the store).
	for _, name := range []string{"priced.csv", "exceptions.csv"} {
		for _, other := range []string{"ref", "folder-run"} {
			if a, b := read("store-run", name), read(other, name); !bytes.Equal(a, b) {
				t.Errorf("store-run/%s differs from %s/%s: %s", name, other, name, firstDiffLine(a, b))
			}
		}
	}
	a, b := withoutColumn(t, read("store-run", "schedule_issues.csv"), 2), withoutColumn(t, read("folder-run", "schedule_issues.csv"), 2)
	if !bytes.Equal(a, b) {
		t.Errorf("schedule issues of the store and of its export differ: %s", firstDiffLine(a, b))
	}
}

// withoutColumn returns CSV data with column i blanked.
func withoutColumn(t *testing.T, data []byte, i int) []byte {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	for _, r := range recs {
		r[i] = ""
		_ = w.Write(r)
	}
	w.Flush()
	return b.Bytes()
}

func firstDiffLine(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return "line " + strconv.Itoa(i+1) + ": " + al[i] + " | " + bl[i]
		}
	}
	return "lengths differ"
}

// A schedule without a single contract is a configuration error (exit 2)
// naming where it came from, not a run that excepts every line; exporting
// an empty store is refused unless --allow-empty.
func TestEmptyScheduleIsAConfigurationError(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(empty, "contracts.csv"), []byte("contract_id,vendor_id,status,effective_date,expiration_date\n"), 0o644)
	os.WriteFile(filepath.Join(empty, "rates.csv"), []byte("rate_id,contract_id,rate_kind,rate_type,rate_value,effective_date\n"), 0o644)
	url := pgtest.NewDatabase(t)
	if status, _, stderr := runCLI(t, "db", "migrate", "--db", url); status != 0 {
		t.Fatal(stderr)
	}
	for _, src := range []string{empty, url} {
		status, _, stderr := runCLI(t, "reprice", "--contracts", src, "--claims", sampleClaims, "--out", filepath.Join(dir, "out"), "--ledger", "none")
		if status != 2 || !strings.Contains(stderr, "holds no contract") {
			t.Errorf("reprice from an empty %s: exit %d: %s", src, status, stderr)
		}
		if strings.Contains(stderr, "postgres://") && strings.Contains(src, "@") && strings.Contains(stderr, "password") {
			t.Errorf("the message shows a password: %s", stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("a run against an empty schedule created its output folder")
	}
	if status, _, stderr := runCLI(t, "contracts", "export", "--from", url, "--to", filepath.Join(dir, "x")); status != 2 || !strings.Contains(stderr, "holds no contract") {
		t.Errorf("export of an empty store: exit %d: %s", status, stderr)
	}
	if status, _, stderr := runCLI(t, "contracts", "export", "--from", url, "--to", filepath.Join(dir, "x"), "--allow-empty"); status != 0 {
		t.Errorf("export --allow-empty: exit %d: %s", status, stderr)
	}
}

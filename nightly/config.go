package nightly

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/repricer/repricer/connectors/postgres"
)

// Config is the job's configuration file (JSON). Every key is documented in
// docs/nightly.md. Secrets never appear in it: the database password comes
// from DATABASE_URL, PGPASSWORD or ~/.pgpass, the Business Central client
// secret from BC_CLIENT_SECRET or BC_CLIENT_SECRET_FILE.
type Config struct {
	// Name names the job in logs and in the default lock key.
	Name string `json:"name"`
	// Contracts is the schedule: a bundle folder or a postgres:// URL
	// (without password); empty means the Database.
	Contracts string `json:"contracts"`
	// Database is the postgres:// URL (without password) of the advisory
	// lock and the Business Central sync state; empty means $DATABASE_URL.
	Database string `json:"database"`
	// Claims are file globs, expanded after {{date}} substitution, sorted.
	Claims []string `json:"claims"`
	// Out is the output folder; {{date}} is replaced by the run date.
	Out               string            `json:"out"`
	Format            string            `json:"format"`
	Workers           int               `json:"workers"`
	SystemDefaultRate string            `json:"system_default_rate"`
	Map               map[string]string `json:"map"`
	// Timezone names the zone of "today" for {{date}} (default UTC).
	Timezone string `json:"timezone"`
	// DBTimeout bounds one database statement, e.g. "10m".
	DBTimeout string       `json:"db_timeout"`
	Report    ReportConfig `json:"report"`
	Lock      LockConfig   `json:"lock"`
	BC        BCConfig     `json:"bc"`
}

// ReportConfig configures report.html.
type ReportConfig struct {
	// Disabled leaves report.html out.
	Disabled bool `json:"disabled"`
	// ExamplesPerCode is how many exception rows of each code are shown
	// (default 3; CSV output only).
	ExamplesPerCode int `json:"examples_per_code"`
}

// Lock modes.
const (
	LockAuto     = "auto"     // Postgres when a database is configured, else a file
	LockPostgres = "postgres" // pg_try_advisory_lock on Database
	LockFile     = "file"     // .repricer.lock in the output folder
	LockNone     = "none"     // no lock (the scheduler guarantees one run at a time)
)

// LockConfig configures the lock that keeps two runs from overlapping.
type LockConfig struct {
	Mode string `json:"mode"`
	// Key overrides the lock key (default "repricer-run:" + the absolute
	// output folder).
	Key string `json:"key"`
}

// BCConfig configures the Business Central sync. Without Enabled the job
// only reprices.
type BCConfig struct {
	Enabled     bool   `json:"enabled"`
	BaseURL     string `json:"base_url"`
	Tenant      string `json:"tenant"`
	Environment string `json:"environment"`
	CompanyID   string `json:"company_id"`
	ClientID    string `json:"client_id"`
	Publisher   string `json:"publisher"`
	Group       string `json:"group"`
	APIVersion  string `json:"api_version"`
	TokenURL    string `json:"token_url"`
	Concurrency int    `json:"concurrency"`
	MaxRetries  int    `json:"max_retries"`
	Force       bool   `json:"force"`
}

// Environment variables the job reads.
const (
	EnvDatabaseURL  = "DATABASE_URL"
	EnvBCSecret     = "BC_CLIENT_SECRET"
	EnvBCSecretFile = "BC_CLIENT_SECRET_FILE"
)

// maxConfig bounds the configuration file; maxSecretFile the secret file.
const (
	maxConfig     = 1 << 20
	maxSecretFile = 64 << 10
)

// ConfigError is a configuration that cannot work (exit status 2).
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string   { return "config: " + e.Err.Error() }
func (e *ConfigError) Unwrap() error   { return e.Err }
func (e *ConfigError) ExitStatus() int { return 2 }

func configErrorf(format string, args ...any) error {
	return &ConfigError{Err: fmt.Errorf(format, args...)}
}

// LoadConfig reads and checks the configuration file at path. Unknown keys
// are errors, so a misspelt key fails the job instead of being ignored.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxConfig+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, &ConfigError{Err: fmt.Errorf("%s: %w", path, err)}
	}
	if len(b) > maxConfig {
		return nil, configErrorf("%s is larger than %d bytes", path, maxConfig)
	}
	return ParseConfig(b, path)
}

// ParseConfig parses and checks a configuration; name is used in messages.
func ParseConfig(b []byte, name string) (*Config, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, configErrorf("%s: %w", name, err)
	}
	if dec.More() {
		return nil, configErrorf("%s: more than one JSON value", name)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) check() error {
	if c.Name == "" {
		c.Name = "nightly"
	}
	if c.Format == "" {
		c.Format = "csv"
	}
	if c.Timezone == "" {
		c.Timezone = "UTC"
	}
	if c.Lock.Mode == "" {
		c.Lock.Mode = LockAuto
	}
	if c.Report.ExamplesPerCode == 0 {
		c.Report.ExamplesPerCode = 3
	}
	switch {
	case len(c.Claims) == 0:
		return configErrorf(`"claims" is required: a list of file globs, e.g. ["/data/in/{{date}}/*.csv"]`)
	case c.Out == "":
		return configErrorf(`"out" is required, e.g. "/data/out/{{date}}"`)
	case c.Format != "csv" && c.Format != "parquet":
		return configErrorf(`"format" %q: use csv or parquet`, c.Format)
	case c.Workers < 0:
		return configErrorf(`"workers" must not be negative`)
	case c.Report.ExamplesPerCode < 0:
		return configErrorf(`"report.examples_per_code" must not be negative`)
	case !slices.Contains([]string{LockAuto, LockPostgres, LockFile, LockNone}, c.Lock.Mode):
		return configErrorf(`"lock.mode" %q: use auto, postgres, file or none`, c.Lock.Mode)
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		return configErrorf(`"timezone": %w`, err)
	}
	if c.DBTimeout != "" {
		if d, err := time.ParseDuration(c.DBTimeout); err != nil || d <= 0 {
			return configErrorf(`"db_timeout" %q: want a positive duration such as "10m"`, c.DBTimeout)
		}
	}
	for _, k := range []struct{ key, v string }{{"contracts", c.Contracts}, {"database", c.Database}} {
		if err := noPassword(k.key, k.v); err != nil {
			return err
		}
	}
	if c.Database != "" && !postgres.IsURL(c.Database) {
		return configErrorf(`"database" must be a postgres:// URL`)
	}
	return nil
}

// noPassword refuses a database URL with a password in the configuration
// file; the message does not repeat the URL.
func noPassword(key, v string) error {
	if !postgres.IsURL(v) {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil {
		return configErrorf("%q is not a valid URL", key)
	}
	if _, set := u.User.Password(); set {
		return configErrorf("%q holds a password: keep secrets out of the configuration file "+
			"(use PGPASSWORD, ~/.pgpass, or DATABASE_URL in the environment)", key)
	}
	return nil
}

// Plan is a configuration resolved for one run date: files found, folders
// made absolute, the environment read.
type Plan struct {
	Date        string   // YYYY-MM-DD
	OutDir      string   // absolute
	Claims      []string // sorted, de-duplicated
	Contracts   string   // bundle folder or postgres:// URL (may hold a password from the environment)
	DatabaseURL string   // "" when no database is configured
	LockMode    string   // the effective mode: postgres, file or none
	LockKey     string
	DBTimeout   time.Duration
	BCSecret    string
}

// Getenv reads an environment variable; os.Getenv in production.
type Getenv func(string) string

// Resolve fills the templates with date ("" means today in the configured
// time zone at now), expands the claim globs and reads the environment.
func (c *Config) Resolve(date string, now time.Time, getenv Getenv) (*Plan, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return nil, configErrorf(`"timezone": %w`, err)
	}
	if date == "" {
		date = now.In(loc).Format(time.DateOnly)
	} else if _, err := time.Parse(time.DateOnly, date); err != nil {
		return nil, configErrorf("run date %q: want YYYY-MM-DD", date)
	}
	p := &Plan{Date: date, DBTimeout: postgres.DefaultStatementTimeout}
	if c.DBTimeout != "" {
		p.DBTimeout, _ = time.ParseDuration(c.DBTimeout) // checked by check
	}
	if p.OutDir, err = filepath.Abs(expand(c.Out, date)); err != nil {
		return nil, configErrorf(`"out": %w`, err)
	}
	seen := map[string]bool{}
	for _, g := range c.Claims {
		pattern := expand(g, date)
		matches, err := filepath.Glob(pattern)
		if err != nil {
			return nil, configErrorf(`"claims" %q: %w`, g, err)
		}
		for _, m := range matches {
			if !seen[m] {
				seen[m] = true
				p.Claims = append(p.Claims, m)
			}
		}
	}
	slices.Sort(p.Claims)
	if len(p.Claims) == 0 {
		return nil, &InputError{Err: fmt.Errorf("no claim files match %q for %s", c.Claims, date)}
	}
	p.DatabaseURL = c.Database
	if p.DatabaseURL == "" {
		p.DatabaseURL = getenv(EnvDatabaseURL)
	}
	if p.DatabaseURL != "" && !postgres.IsURL(p.DatabaseURL) {
		return nil, configErrorf("%s must be a postgres:// URL", EnvDatabaseURL)
	}
	p.Contracts = c.Contracts
	if p.Contracts == "" {
		if p.DatabaseURL == "" {
			return nil, configErrorf(`"contracts" is required (a bundle folder or a postgres:// URL), or set "database" or %s`, EnvDatabaseURL)
		}
		p.Contracts = p.DatabaseURL
	}
	p.LockMode = c.Lock.Mode
	if p.LockMode == LockAuto {
		p.LockMode = LockFile
		if p.DatabaseURL != "" {
			p.LockMode = LockPostgres
		}
	}
	if p.LockMode == LockPostgres && p.DatabaseURL == "" {
		return nil, configErrorf(`"lock.mode" postgres needs "database" or %s`, EnvDatabaseURL)
	}
	p.LockKey = c.Lock.Key
	if p.LockKey == "" {
		p.LockKey = "repricer-run:" + p.OutDir
	}
	if c.BC.Enabled {
		if p.DatabaseURL == "" {
			return nil, configErrorf(`"bc.enabled": the sync state lives in Postgres: set "database" or %s`, EnvDatabaseURL)
		}
		if p.BCSecret, err = bcSecret(getenv); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// expand replaces {{date}} in s.
func expand(s, date string) string { return strings.ReplaceAll(s, "{{date}}", date) }

// bcSecret reads the client secret from BC_CLIENT_SECRET or the file named
// by BC_CLIENT_SECRET_FILE; messages never hold the secret.
func bcSecret(getenv Getenv) (string, error) {
	val, file := strings.TrimSpace(getenv(EnvBCSecret)), getenv(EnvBCSecretFile)
	switch {
	case val != "" && file != "":
		return "", configErrorf("both %s and %s are set; set only one", EnvBCSecret, EnvBCSecretFile)
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return "", configErrorf("%s: %w", EnvBCSecretFile, err)
		}
		b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		switch s := strings.TrimSpace(string(b)); {
		case err != nil:
			return "", configErrorf("%s: %w", EnvBCSecretFile, err)
		case len(b) > maxSecretFile:
			return "", configErrorf("%s: the file is larger than %d bytes", EnvBCSecretFile, maxSecretFile)
		case s == "":
			return "", configErrorf("%s: the file is empty", EnvBCSecretFile)
		default:
			return s, nil
		}
	case val != "":
		return val, nil
	}
	return "", configErrorf(`"bc.enabled" needs the client secret in %s or a file named by %s`, EnvBCSecret, EnvBCSecretFile)
}

// InputError is a run whose inputs are missing or unusable (exit status 1).
type InputError struct{ Err error }

func (e *InputError) Error() string { return "inputs: " + e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

var errNoSummary = errors.New("the pipeline returned no summary")

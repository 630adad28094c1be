package postgres

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
)

// RowError is one row an import refused: where it came from, which field
// is wrong, and why.
type RowError struct {
	File   string // the bundle file (or table) of the row
	Row    int    // 1-based record number, header not counted; 0 when unknown
	Line   int    // line of the file where the record starts (the header is line 1); 0 when unknown
	Entity string // "contract", "rate" or "rate_kind"
	ID     string
	Field  string
	Value  string // the offending value, when there is one
	Reason string
	// Constraint names the database constraint the row breaks, when the
	// check mirrors one (see docs/postgres.md).
	Constraint string
	// index is the row's position in its Schedule slice (Kinds, Contracts
	// or Rates), for ImportAccepted.
	index int
	// other is, for an overlap (overlapConstraint), the index of the
	// contract of the schedule it overlaps, or -1 for a stored contract.
	other int
}

func (e RowError) String() string {
	var b strings.Builder
	b.WriteString(e.File)
	// FILE:LINE, as editors and compilers say it; a row of a table has no
	// line, and says its row.
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	} else if e.Row > 0 {
		b.WriteString(":" + strconv.Itoa(e.Row))
	}
	fmt.Fprintf(&b, ": %s %s", e.Entity, e.ID)
	if e.Field != "" {
		fmt.Fprintf(&b, " field %s", e.Field)
	}
	b.WriteString(": " + e.Reason)
	if e.Value != "" {
		b.WriteString(" (value " + strconv.Quote(e.Value) + ")")
	}
	return b.String()
}

// ImportError is an import that was refused: nothing was written. Rows
// lists every refused row.
type ImportError struct {
	Rows []RowError
}

func (e *ImportError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "postgres: import refused, nothing was written: %d row(s) rejected", len(e.Rows))
	for _, r := range e.Rows {
		b.WriteString("\n  " + r.String())
	}
	return b.String()
}

// ConstraintError is a statement the database refused because it breaks a
// constraint (unique, foreign key, check, exclusion, not null).
type ConstraintError struct {
	Table      string
	Constraint string
	Column     string
	Code       pqerror.Code
	Message    string
	Detail     string
	Err        error
}

func (e *ConstraintError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "postgres: %s violates constraint %s", e.Table, e.Constraint)
	if e.Column != "" {
		fmt.Fprintf(&b, " (column %s)", e.Column)
	}
	b.WriteString(": " + e.Message)
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	return b.String()
}

func (e *ConstraintError) Unwrap() error { return e.Err }

// asConstraintError returns err as a *ConstraintError when the database
// refused it for a constraint (class 23), else err unchanged.
func asConstraintError(err error) error {
	pqErr := pq.As(err)
	if pqErr == nil || pqErr.Code.Class() != pqerror.ClassIntegrityConstraintViolation {
		return err
	}
	return &ConstraintError{
		Table:      pqErr.Table,
		Constraint: pqErr.Constraint,
		Column:     pqErr.Column,
		Code:       pqErr.Code,
		Message:    pqErr.Message,
		Detail:     pqErr.Detail,
		Err:        err,
	}
}

// LoadError is a failure while loading reference data; no schedule is
// returned with it.
type LoadError struct {
	Table string // the table being read, when known
	Row   int    // rows of Table read before the failure
	Err   error
}

func (e *LoadError) Error() string {
	if e.Table == "" {
		return "postgres: load: " + e.Err.Error()
	}
	return fmt.Sprintf("postgres: load %s (after %d rows): %v", e.Table, e.Row, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }

// ValueError is a stored value the loader cannot represent in the model.
type ValueError struct {
	Table, ID, Column, Value string
	Err                      error
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("%s %s column %s: value %q: %v", e.Table, e.ID, e.Column, e.Value, e.Err)
}

func (e *ValueError) Unwrap() error { return e.Err }

var errNull = errors.New("unexpected NULL")

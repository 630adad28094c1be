package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"
)

// envLogFormat overrides how logs are written: json or text.
const envLogFormat = "REPRICER_LOG_FORMAT"

// isTerminal reports whether w is an interactive terminal: a character
// device other than /dev/null (no terminal library needed).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

// newLogger returns the run's logger on w: JSON lines when w is not a
// terminal (schedulers and log collectors), text when it is, unless format
// ("json" or "text", else $REPRICER_LOG_FORMAT) says otherwise. Callers log
// stages, counts and durations only: never member ids, amounts, tokens or
// connection passwords.
//
// json reports whether the logs are JSON lines: then nothing else may be
// written to w (no progress line, no plain-text error).
func newLogger(w io.Writer, format string) (log *slog.Logger, json bool, err error) {
	if format == "" {
		format = os.Getenv(envLogFormat)
	}
	switch strings.ToLower(format) {
	case "":
		if isTerminal(w) {
			return slog.New(slog.NewTextHandler(w, nil)), false, nil
		}
		return slog.New(slog.NewJSONHandler(w, nil)), true, nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), true, nil
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), false, nil
	}
	return nil, false, usagef("log format %q: use json or text", format)
}

// progress prints one self-overwriting progress line for long runs on a
// terminal: lines so far and lines per second, and the ETA when the total
// is known. It is called from one goroutine (the pipeline's writer).
type progress struct {
	w     io.Writer
	total int64 // 0: unknown
	now   func() time.Time
	start time.Time
	last  time.Time
	every time.Duration
	shown bool
}

func newProgress(w io.Writer, total int64, now func() time.Time) *progress {
	t := now()
	return &progress{w: w, total: total, now: now, start: t, last: t, every: 250 * time.Millisecond}
}

// update is a pipeline.Config.Progress function.
func (p *progress) update(lines int64) {
	t := p.now()
	if t.Sub(p.last) < p.every {
		return
	}
	p.last = t
	p.shown = true
	fmt.Fprint(p.w, "\r"+progressLine(lines, p.total, t.Sub(p.start))+"\x1b[K")
}

// done ends the progress line.
func (p *progress) done() {
	if p.shown {
		fmt.Fprintln(p.w)
	}
}

// progressLine formats "1,234,567 lines, 250,000 lines/s[, 42% ETA 12s]".
func progressLine(lines, total int64, elapsed time.Duration) string {
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(lines) / s
	}
	out := fmt.Sprintf("repricer: %s lines, %s lines/s", thousands(lines), thousands(int64(rate)))
	if total > 0 && lines <= total {
		out += fmt.Sprintf(", %d%%", lines*100/total)
		if rate > 0 {
			eta := time.Duration(float64(total-lines) / rate * float64(time.Second)).Round(time.Second)
			out += ", ETA " + eta.String()
		}
	}
	return out
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

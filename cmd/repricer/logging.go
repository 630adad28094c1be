package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/repricer/repricer/pipeline"
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
// terminal (schedulers and log collectors), text when it is (terminal),
// unless format
// ("json" or "text", else $REPRICER_LOG_FORMAT) says otherwise. Callers log
// stages, counts and durations only: never member ids, amounts, tokens or
// connection passwords.
//
// json reports whether the logs are JSON lines: then nothing else may be
// written to w (no progress line, no plain-text error).
func newLogger(w io.Writer, format string, terminal bool) (log *slog.Logger, json bool, err error) {
	if format == "" {
		format = os.Getenv(envLogFormat)
	}
	switch strings.ToLower(format) {
	case "":
		if terminal {
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

// progress prints one self-overwriting progress line on a terminal: the
// stage, its count so far, its rate, and the share done with an ETA when
// the total is known. Rates count from the stage's first report, so that
// loading the schedule does not dilute the pricing rate. Log lines written
// through logWriter clear the progress line first, so that they start on
// a line of their own. Safe for concurrent use.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	now   func() time.Time
	every time.Duration
	// The stage being shown and where it stood at its first report.
	stage       string
	start, last time.Time
	count0      int64
	fraction0   float64
	open        bool          // a progress line is on the screen
	stopTick    chan struct{} // ends the ticker of a stage that reports no counts
}

func newProgress(w io.Writer, now func() time.Time) *progress {
	return &progress{w: w, now: now, every: 250 * time.Millisecond}
}

// tick shows stage with its elapsed time (and count(), when count is not
// nil) once per interval until another stage reports or done is called:
// for work that reports nothing itself, such as loading a schedule.
func (p *progress) tick(stage string, count func() int64) {
	p.mu.Lock()
	p.stopTicking()
	p.stage, p.start, p.last, p.count0, p.fraction0 = stage, p.now(), p.now(), 0, -1
	stop := make(chan struct{})
	p.stopTick = stop
	p.mu.Unlock()
	go func() {
		t := time.NewTicker(p.every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				n := int64(-1)
				if count != nil {
					n = count()
				}
				p.mu.Lock()
				p.draw(stage, n, -1)
				p.mu.Unlock()
			}
		}
	}()
}

// stopTicking ends the ticker, if any. Callers hold p.mu.
func (p *progress) stopTicking() {
	if p.stopTick != nil {
		close(p.stopTick)
		p.stopTick = nil
	}
}

// report shows count units of stage ("load": rates, "reprice": lines;
// -1: not counted) and the fraction done (-1: unknown), at most once per
// interval.
func (p *progress) report(stage string, count int64, fraction float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopTicking() // the stage reports for itself now
	p.draw(stage, count, fraction)
}

// draw is report without stopping a ticker. Callers hold p.mu.
func (p *progress) draw(stage string, count int64, fraction float64) {
	t := p.now()
	if stage != p.stage {
		p.stage, p.start, p.count0, p.fraction0 = stage, t, count, fraction
		p.last = t
		return
	}
	if t.Sub(p.last) < p.every {
		return
	}
	p.last = t
	p.open = true
	if count >= 0 {
		count -= p.count0
	}
	fmt.Fprint(p.w, "\r"+progressLine(stage, count, fraction, p.fraction0, t.Sub(p.start))+"\x1b[K")
}

// update is a pipeline.Config.Progress function.
func (p *progress) update(pp pipeline.Progress) { p.report("reprice", pp.Lines, pp.Fraction) }

// clear removes the progress line from the screen (the next report draws
// it again). Callers hold p.mu.
func (p *progress) clear() {
	if p.open {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.open = false
	}
}

// done ends the progress display, leaving the cursor at the start of an
// empty line.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopTicking()
	p.clear()
}

// logWriter is w for a logger that shares the terminal with p: every write
// (one log line) first clears the progress line.
func (p *progress) logWriter() io.Writer { return progressClearer{p} }

type progressClearer struct{ p *progress }

func (c progressClearer) Write(b []byte) (int, error) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	c.p.clear()
	return c.p.w.Write(b)
}

// progressLine formats "repricer: reprice 1,234,567 lines, 250,000
// lines/s[, 42%, ETA 12s]"; count and elapsed are the stage's so far,
// fraction0 the fraction done when the stage's clock started.
func progressLine(stage string, count int64, fraction, fraction0 float64, elapsed time.Duration) string {
	unit := "lines"
	if stage == "load" {
		unit = "rates"
	}
	if count < 0 {
		return fmt.Sprintf("repricer: %s, %s", stage, elapsed.Round(time.Second))
	}
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(count) / s
	}
	out := fmt.Sprintf("repricer: %s %s %s, %s %s/s", stage, thousands(count), unit, thousands(int64(rate)), unit)
	if fraction >= 0 && fraction <= 1 {
		out += fmt.Sprintf(", %d%%", int(fraction*100))
		if d := fraction - fraction0; d > 0 && fraction < 1 {
			eta := time.Duration(elapsed.Seconds() / d * (1 - fraction) * float64(time.Second)).Round(time.Second)
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

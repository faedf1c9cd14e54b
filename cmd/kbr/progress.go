package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/kbr-project/kbr/workflows"
)

// measure is what a run's progress is counted in: records when the run
// planned a count, else bytes when it estimated them, else partitions.
type measure struct {
	done, total float64
	unit        string // "records", "MB" or "partitions"
}

func measureOf(p workflows.Progress) (measure, bool) {
	switch {
	case p.RecordsTotal > 0:
		return measure{float64(p.RecordsDone), float64(p.RecordsTotal), "records"}, true
	case p.EstimatedBytes > 0:
		return measure{float64(p.BytesDone) / 1e6, float64(p.EstimatedBytes) / 1e6, "MB"}, true
	case p.PartitionsTotal > 0:
		return measure{float64(p.PartitionsDone), float64(p.PartitionsTotal), "partitions"}, true
	}
	return measure{}, false
}

// barLine is the one-line progress bar a terminal shows for a long step:
// the step, a bar, percent, rate and ETA, in fewer than width columns.
// running is the time the step has run, over which rate and ETA are
// averaged.
func barLine(p workflows.Progress, running time.Duration, width int) string {
	m, ok := measureOf(p)
	if !ok {
		return ""
	}
	frac := 0.0
	if m.total > 0 {
		frac = min(max(m.done/m.total, 0), 1)
	}
	step := ""
	if s := p.Current(); s != nil {
		step = s.Name
	}
	secs := max(running.Seconds(), 0.001)
	rate := ""
	if p.BytesDone > 0 {
		rate = fmt.Sprintf("%.1f MB/s", float64(p.BytesDone)/1e6/secs)
	} else if m.done > 0 {
		rate = fmt.Sprintf("%.0f %s/s", m.done/secs, m.unit)
	}
	eta := "ETA --"
	if m.done > 0 && frac < 1 {
		left := time.Duration((m.total - m.done) / (m.done / secs) * float64(time.Second))
		eta = "ETA " + shortDuration(left)
	} else if frac >= 1 {
		eta = "ETA 0s"
	}
	parts := []string{fmt.Sprintf("%3.0f%%", frac*100), countText(m)}
	if rate != "" {
		parts = append(parts, rate)
	}
	tail := " " + strings.Join(append(parts, eta), "  ")
	head := fmt.Sprintf("  %-18s ", truncate(step, 18))
	// Two brackets, and the last column left free (a write there wraps).
	barWidth := width - len([]rune(head)) - len([]rune(tail)) - 3
	if barWidth < 10 {
		// A narrow terminal: no bar, the figures only.
		return truncate(head+strings.TrimSpace(tail), max(width-1, 20))
	}
	filled := int(frac * float64(barWidth))
	bar := strings.Repeat("=", filled)
	if filled < barWidth {
		bar += ">" + strings.Repeat(" ", barWidth-filled-1)
	}
	return head + "[" + bar + "]" + tail
}

func countText(m measure) string {
	if m.unit == "MB" {
		return fmt.Sprintf("%.1f/%.1f MB", m.done, m.total)
	}
	return fmt.Sprintf("%.0f/%.0f %s", m.done, m.total, m.unit)
}

func shortDuration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%ds", int(d.Seconds()+0.5))
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:max(n-1, 0)]) + "…"
}

// termWidth is the width of the terminal w writes to (80 when it cannot
// tell).
func termWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
			return cols
		}
	}
	return 80
}

// isTTY says whether w is a terminal (a buffer or pipe is not).
func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

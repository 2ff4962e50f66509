package loadgen

import (
	"fmt"
	"io"
	"strings"
)

// Table is the benchmark report: measured figures, then targets with the
// measured ratio and whether each is met. It prints as Markdown so the
// same text reads well in a terminal and in results/latest.md.
type Table struct {
	Title   string
	Notes   []string
	Rows    []Row
	Targets []Target
}

// Row is one measured figure. Columns holds one value per system compared
// (for example raw S3, kfake, silt dev, silt agent); an empty string is a
// figure that does not apply or was not measured.
type Row struct {
	Name   string
	Unit   string
	Values []string
}

// Target is one goal from the issue and how the run compares with it.
type Target struct {
	System   string // which system the target was checked on
	Goal     string // the target, e.g. "produce ≥ 0.7× raw PUT"
	Measured string // the measured ratio or figure
	// Met is "met", "not met", or "n/a" when an input is missing.
	Met string
}

// Add appends a row.
func (t *Table) Add(name, unit string, values ...string) {
	t.Rows = append(t.Rows, Row{Name: name, Unit: unit, Values: values})
}

// Check appends a target: measured is printed as given, ok decides met.
// valid false (an input missing or zero) records n/a instead.
func (t *Table) Check(system, goal, measured string, ok, valid bool) {
	met := "n/a"
	if valid {
		met = "not met"
		if ok {
			met = "met"
		}
	}
	t.Targets = append(t.Targets, Target{System: system, Goal: goal, Measured: measured, Met: met})
}

// Print writes the table as Markdown. columns names the systems in
// Row.Values order.
func (t *Table) Print(w io.Writer, columns []string) {
	if t.Title != "" {
		fmt.Fprintf(w, "## %s\n\n", t.Title)
	}
	for _, n := range t.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	if len(t.Notes) > 0 {
		fmt.Fprintln(w)
	}
	head := append([]string{"figure", "unit"}, columns...)
	rows := [][]string{head, dashes(len(head))}
	for _, r := range t.Rows {
		vals := make([]string, len(columns))
		copy(vals, r.Values)
		rows = append(rows, append([]string{r.Name, r.Unit}, vals...))
	}
	printAligned(w, rows)
	if len(t.Targets) == 0 {
		return
	}
	fmt.Fprintln(w)
	rows = [][]string{{"system", "target", "measured", "result"}, dashes(4)}
	for _, g := range t.Targets {
		rows = append(rows, []string{g.System, g.Goal, g.Measured, g.Met})
	}
	printAligned(w, rows)
}

func dashes(n int) []string {
	d := make([]string, n)
	for i := range d {
		d[i] = "---"
	}
	return d
}

// printAligned prints Markdown table rows padded to column width, so the
// raw text is readable too.
func printAligned(w io.Writer, rows [][]string) {
	width := map[int]int{}
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range r {
			pad := width[i] - len([]rune(c))
			if c == "---" {
				c, pad = strings.Repeat("-", width[i]), 0
			}
			b.WriteString(" " + c + strings.Repeat(" ", pad) + " |")
		}
		fmt.Fprintln(w, b.String())
	}
}

// Formatting helpers shared by the report and `silt bench`.

// MBps formats a bytes-per-second rate in MB/s (10^6 bytes).
func MBps(bytesPerSec float64) string { return fmt.Sprintf("%.1f", bytesPerSec/1e6) }

// Ms formats a duration in milliseconds.
func Ms(d interface{ Seconds() float64 }) string {
	return fmt.Sprintf("%.1f", d.Seconds()*1000)
}

// Num formats a plain number with the given decimals.
func Num(v float64, decimals int) string { return fmt.Sprintf("%.*f", decimals, v) }

// Ratio formats a ratio as "0.83×".
func Ratio(v float64) string { return fmt.Sprintf("%.2f×", v) }

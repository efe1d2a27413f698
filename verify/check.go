package verify

import "fmt"

// Check returns an error when results hold violations, saying how many.
func Check(results []*Result) error {
	violations := 0
	for _, r := range results {
		violations += r.Violations
	}
	if violations == 0 {
		return nil
	}
	noun := "violations"
	if violations == 1 {
		noun = "violation"
	}
	return fmt.Errorf("%d %s: DST differs from SRC by more than the dropped paths and stripped ELF files", violations, noun)
}

// Package suggest finds the name that a misspelt one most likely meant, for
// the "did you mean" hints of the model compiler and the settings loader.
//
//	suggest.Hint("pasword", []string{"password", "user"}) // ` (did you mean "password"?)`
package suggest

import "fmt"

// Hint returns ` (did you mean "x"?)` when one of candidates is close to
// name (at most two edits away, or a third of its length), and "" otherwise.
// Of equally close candidates the first in lexical order is named.
func Hint(name string, candidates []string) string {
	best, bestDist := "", len(name)/2+2
	for _, c := range candidates {
		d := distance(name, c)
		if d < bestDist || (d == bestDist && c < best) {
			best, bestDist = c, d
		}
	}
	if best == "" || bestDist > max(2, len(name)/3) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein edit distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Package typo finds the name a user probably meant: the nearest known
// field of the sites file, the nearest flag of a command. One edit
// distance for every "did you mean …?".
package typo

// Distance is the Levenshtein edit distance between a and b, in bytes (the
// names compared are ASCII). Inputs longer than 64 bytes are too long to
// be a typo of a name: their distance is their length.
func Distance(a, b string) int {
	if len(a) > 64 {
		return len(a)
	}
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

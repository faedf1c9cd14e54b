package kmeta

import "testing"

func TestSameRelease(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"3.9", "3.9.1", true}, {"3.9.1", "3.9.1", true}, {"3.9.1", "3.9.2", false},
		{"3.8", "3.9.1", false}, {"4.1", "3.9", false}, {"custom", "custom", true}, {"custom", "3.9", false},
	} {
		if got := SameRelease(c.a, c.b); got != c.want {
			t.Errorf("SameRelease(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

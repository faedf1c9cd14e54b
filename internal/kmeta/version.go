package kmeta

// SameRelease reports whether two Kafka versions name the same release, at
// the precision of the less precise one: "3.9" (a broker's API-version
// guess) matches "3.9.1" (a jar's version), "3.9.1" does not match "3.9.2"
// nor "3.8". Versions without a release number match only themselves.
func SameRelease(a, b string) bool {
	va, oka := parseVersion(a)
	vb, okb := parseVersion(b)
	if !oka || !okb {
		return a == b
	}
	if va[0] != vb[0] || va[1] != vb[1] {
		return false
	}
	pa, pb := hasPatch(a), hasPatch(b)
	return !pa || !pb || va[2] == vb[2]
}

func hasPatch(s string) bool {
	m := versionRE.FindStringSubmatch(s)
	return m != nil && m[3] != ""
}

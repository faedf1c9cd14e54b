package zkmeta

import "github.com/kbr-project/kbr/internal/jsoncase"

// The metadata archive's format 1 spells these types' keys in camelCase;
// they read the same.

func (t *Tree) UnmarshalJSON(b []byte) error { type plain Tree; return jsoncase.Decode(b, (*plain)(t)) }
func (z *Znode) UnmarshalJSON(b []byte) error {
	type plain Znode
	return jsoncase.Decode(b, (*plain)(z))
}
func (s *Stat) UnmarshalJSON(b []byte) error { type plain Stat; return jsoncase.Decode(b, (*plain)(s)) }

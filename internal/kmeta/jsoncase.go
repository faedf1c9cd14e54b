package kmeta

import "github.com/kbr-project/kbr/internal/jsoncase"

// The metadata archive's format 1 and workflow histories of earlier kbr
// versions spell these types' keys in camelCase; they read the same.

func (s *Snapshot) UnmarshalJSON(b []byte) error {
	type plain Snapshot
	return jsoncase.Decode(b, (*plain)(s))
}
func (x *Broker) UnmarshalJSON(b []byte) error {
	type plain Broker
	return jsoncase.Decode(b, (*plain)(x))
}
func (t *Topic) UnmarshalJSON(b []byte) error {
	type plain Topic
	return jsoncase.Decode(b, (*plain)(t))
}
func (a *ACL) UnmarshalJSON(b []byte) error { type plain ACL; return jsoncase.Decode(b, (*plain)(a)) }
func (g *Group) UnmarshalJSON(b []byte) error {
	type plain Group
	return jsoncase.Decode(b, (*plain)(g))
}
func (o *GroupOffset) UnmarshalJSON(b []byte) error {
	type plain GroupOffset
	return jsoncase.Decode(b, (*plain)(o))
}

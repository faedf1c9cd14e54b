// Package schemaregtest seeds a registry with the subjects kbr's tests back
// up and restore: Avro with a reference (two versions), an Avro key,
// Protobuf importing another file, JSON Schema with a $ref, and a
// per-subject compatibility level. The topics are "orders" (Avro),
// "payments" (Protobuf) and "events" (JSON Schema).
package schemaregtest

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/sr"
)

// Schema texts.
const (
	AddressAvro = `{"type":"record","name":"Address","namespace":"com.kbr","fields":[{"name":"city","type":"string"},{"name":"zip","type":"string"}]}`
	OrderAvroV1 = `{"type":"record","name":"Order","namespace":"com.kbr","fields":[{"name":"id","type":"long"},{"name":"ship_to","type":"com.kbr.Address"}]}`
	OrderAvroV2 = `{"type":"record","name":"Order","namespace":"com.kbr","fields":[{"name":"id","type":"long"},{"name":"ship_to","type":"com.kbr.Address"},{"name":"note","type":"string","default":""}]}`
	OrderKey    = `"string"`

	MoneyProto   = "syntax = \"proto3\";\npackage kbr.common;\n\nmessage Money {\n  string currency = 1;\n  int64 units = 2;\n}\n"
	PaymentProto = "syntax = \"proto3\";\npackage kbr.payments;\n\nimport \"common/money.proto\";\n\nmessage Payment {\n  string id = 1;\n  kbr.common.Money amount = 2;\n}\n"

	PointJSON = `{"$id":"point.json","type":"object","properties":{"x":{"type":"integer"},"y":{"type":"integer"}},"required":["x","y"]}`
	EventJSON = `{"type":"object","properties":{"name":{"type":"string"},"at":{"$ref":"point.json"}},"required":["name","at"]}`
)

// Subjects of the fixture.
const (
	SubjectAddress  = "com.kbr.Address" // record-name strategy: never renamed
	SubjectOrders   = "orders-value"
	SubjectOrderKey = "orders-key"
	SubjectMoney    = "common/money.proto"
	SubjectPayments = "payments-value"
	SubjectPoint    = "point.json"
	SubjectEvents   = "events-value"
)

// OrdersCompat is the level set on orders-value.
const OrdersCompat = sr.CompatBackwardTransitive

// Fixture is what Seed registered: the ids the records of each topic carry.
type Fixture struct {
	OrderV1, OrderV2, OrderKey, Payment, Event int
	// All maps each subject to its versions' ids, in order.
	All map[string][]int
}

// Seed registers the fixture's subjects (references first) and sets
// orders-value's compatibility.
func Seed(ctx context.Context, cl *sr.Client) (*Fixture, error) {
	f := &Fixture{All: map[string][]int{}}
	reg := func(subject string, s sr.Schema) (int, error) {
		id, err := cl.RegisterSchema(ctx, subject, s, -1, -1)
		if err != nil {
			return 0, fmt.Errorf("register %s: %w", subject, err)
		}
		f.All[subject] = append(f.All[subject], id)
		return id, nil
	}
	steps := []struct {
		subject string
		s       sr.Schema
		into    *int
	}{
		{SubjectAddress, sr.Schema{Schema: AddressAvro}, nil},
		{SubjectOrders, sr.Schema{Schema: OrderAvroV1, References: []sr.SchemaReference{{Name: "com.kbr.Address", Subject: SubjectAddress, Version: 1}}}, &f.OrderV1},
		{SubjectOrders, sr.Schema{Schema: OrderAvroV2, References: []sr.SchemaReference{{Name: "com.kbr.Address", Subject: SubjectAddress, Version: 1}}}, &f.OrderV2},
		{SubjectOrderKey, sr.Schema{Schema: OrderKey}, &f.OrderKey},
		{SubjectMoney, sr.Schema{Schema: MoneyProto, Type: sr.TypeProtobuf}, nil},
		{SubjectPayments, sr.Schema{Schema: PaymentProto, Type: sr.TypeProtobuf, References: []sr.SchemaReference{{Name: "common/money.proto", Subject: SubjectMoney, Version: 1}}}, &f.Payment},
		{SubjectPoint, sr.Schema{Schema: PointJSON, Type: sr.TypeJSON}, nil},
		{SubjectEvents, sr.Schema{Schema: EventJSON, Type: sr.TypeJSON, References: []sr.SchemaReference{{Name: "point.json", Subject: SubjectPoint, Version: 1}}}, &f.Event},
	}
	for _, st := range steps {
		id, err := reg(st.subject, st.s)
		if err != nil {
			return nil, err
		}
		if st.into != nil {
			*st.into = id
		}
	}
	if r := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: OrdersCompat}, SubjectOrders)[0]; r.Err != nil {
		return nil, fmt.Errorf("set compatibility of %s: %w", SubjectOrders, r.Err)
	}
	return f, nil
}

package kmeta

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// describeACLs reads every ACL binding with one all-matching filter. A
// cluster without an authorizer answers SECURITY_DISABLED; that is
// recorded as the note, because such a cluster legitimately has no ACLs.
func describeACLs(ctx context.Context, cl *kgo.Client) ([]ACL, string, error) {
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType = kmsg.ACLResourceTypeAny
	req.ResourcePatternType = kmsg.ACLResourcePatternTypeAny
	req.Operation = kmsg.ACLOperationAny
	req.PermissionType = kmsg.ACLPermissionTypeAny
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, "", fmt.Errorf("describe ACLs: %w", err)
	}
	if resp.ErrorCode == kerr.SecurityDisabled.Code {
		return nil, "the cluster has no authorizer (SECURITY_DISABLED): there are no ACLs to back up", nil
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, "", fmt.Errorf("describe ACLs: %w%s", err, msgSuffix(derefString(resp.ErrorMessage)))
	}
	var acls []ACL
	for _, r := range resp.Resources {
		for _, a := range r.ACLs {
			acls = append(acls, ACL{
				ResourceType: r.ResourceType.String(),
				ResourceName: r.ResourceName,
				PatternType:  r.ResourcePatternType.String(),
				Principal:    a.Principal,
				Host:         a.Host,
				Operation:    a.Operation.String(),
				Permission:   a.PermissionType.String(),
			})
		}
	}
	sort.Slice(acls, func(i, j int) bool { return aclKey(acls[i]) < aclKey(acls[j]) })
	return acls, "", nil
}

func aclKey(a ACL) string {
	return strings.Join([]string{a.ResourceType, a.PatternType, a.ResourceName, a.Principal, a.Host, a.Operation, a.Permission}, "\x00")
}

// String renders a binding as kafka-acls.sh would describe it, for errors
// and reports.
func (a ACL) String() string {
	return fmt.Sprintf("%s %s on %s:%s:%s from %s for %s", a.Permission, a.Operation, a.ResourceType, a.PatternType, a.ResourceName, a.Host, a.Principal)
}

// describeQuotas reads the quotas of every entity: no filter components and
// strict=false match all user, client-id and ip entities.
func describeQuotas(ctx context.Context, adm *kadm.Client) ([]Quota, error) {
	qs, err := adm.DescribeClientQuotas(ctx, false, nil)
	if err != nil {
		return nil, fmt.Errorf("describe client quotas: %w", err)
	}
	var out []Quota
	for _, q := range qs {
		e := Quota{Values: make(map[string]float64, len(q.Values))}
		for _, c := range q.Entity {
			e.Entity = append(e.Entity, QuotaEntity{Type: c.Type, Name: c.Name})
		}
		sort.Slice(e.Entity, func(i, j int) bool { return e.Entity[i].Type < e.Entity[j].Type })
		for _, v := range q.Values {
			e.Values[v.Key] = v.Value
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].EntityString() < out[j].EntityString() })
	return out, nil
}

// EntityString renders the entity as {user=alice, client-id=<default>}.
func (q Quota) EntityString() string {
	parts := make([]string, 0, len(q.Entity))
	for _, c := range q.Entity {
		name := "<default>"
		if c.Name != nil {
			name = *c.Name
		}
		parts = append(parts, c.Type+"="+name)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// describeSCRAMUsers lists every user with SCRAM credentials; see SCRAMUser
// for why only mechanisms and iterations are known.
func describeSCRAMUsers(ctx context.Context, adm *kadm.Client) ([]SCRAMUser, error) {
	ds, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		return nil, fmt.Errorf("describe SCRAM users: %w", err)
	}
	var out []SCRAMUser
	for _, d := range ds.Sorted() {
		if d.Err != nil {
			if d.Err == kerr.ResourceNotFound {
				continue // deleted while listing
			}
			return nil, fmt.Errorf("describe SCRAM user %s: %w%s", d.User, d.Err, msgSuffix(d.ErrMessage))
		}
		u := SCRAMUser{Name: d.User}
		for _, c := range d.CredInfos {
			u.Mechanisms = append(u.Mechanisms, SCRAMMechanism{Mechanism: c.Mechanism.String(), Iterations: c.Iterations})
		}
		sort.Slice(u.Mechanisms, func(i, j int) bool { return u.Mechanisms[i].Mechanism < u.Mechanisms[j].Mechanism })
		out = append(out, u)
	}
	return out, nil
}

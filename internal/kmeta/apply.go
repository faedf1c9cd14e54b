package kmeta

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// aclBatch keeps CreateACLs requests well below any request size limit.
const aclBatch = 500

// ApplyACLs creates every ACL binding of the snapshot on the cluster.
// Creating a binding that already exists is a no-op in Kafka, so a retried
// restore can run this again. ACLs on the target that the snapshot lacks
// are left alone. Topic names in bindings are not renamed.
func ApplyACLs(ctx context.Context, cl *kgo.Client, s *Snapshot) error {
	if s == nil || len(s.ACLs) == 0 {
		return nil
	}
	var errs []error
	for start := 0; start < len(s.ACLs); start += aclBatch {
		batch := s.ACLs[start:min(start+aclBatch, len(s.ACLs))]
		req := kmsg.NewPtrCreateACLsRequest()
		for _, a := range batch {
			c, err := aclCreation(a)
			if err != nil {
				return err
			}
			req.Creations = append(req.Creations, c)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return fmt.Errorf("create %d ACL(s), first %s: %w", len(batch), batch[0], err)
		}
		if len(resp.Results) != len(batch) {
			return fmt.Errorf("create %d ACL(s), first %s: the broker answered %d results", len(batch), batch[0], len(resp.Results))
		}
		for i, r := range resp.Results {
			if r.ErrorCode == kerr.SecurityDisabled.Code {
				return fmt.Errorf("create ACL %s: the target cluster has no authorizer (SECURITY_DISABLED)", batch[i])
			}
			if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
				errs = append(errs, fmt.Errorf("create ACL %s: %w%s", batch[i], err, msgSuffix(derefString(r.ErrorMessage))))
			}
		}
	}
	return errors.Join(errs...)
}

func aclCreation(a ACL) (kmsg.CreateACLsRequestCreation, error) {
	c := kmsg.NewCreateACLsRequestCreation()
	var err error
	if c.ResourceType, err = kmsg.ParseACLResourceType(a.ResourceType); err != nil {
		return c, fmt.Errorf("ACL %s: %w", a, err)
	}
	if c.ResourcePatternType, err = kmsg.ParseACLResourcePatternType(a.PatternType); err != nil {
		return c, fmt.Errorf("ACL %s: %w", a, err)
	}
	if c.Operation, err = kmsg.ParseACLOperation(a.Operation); err != nil {
		return c, fmt.Errorf("ACL %s: %w", a, err)
	}
	if c.PermissionType, err = kmsg.ParseACLPermissionType(a.Permission); err != nil {
		return c, fmt.Errorf("ACL %s: %w", a, err)
	}
	c.ResourceName, c.Principal, c.Host = a.ResourceName, a.Principal, a.Host
	return c, nil
}

// ApplyQuotas sets every client quota of the snapshot on the cluster.
// Setting a value is idempotent; quotas on the target that the snapshot
// lacks are left alone.
func ApplyQuotas(ctx context.Context, cl *kgo.Client, s *Snapshot) error {
	if s == nil || len(s.Quotas) == 0 {
		return nil
	}
	var entries []kadm.AlterClientQuotaEntry
	for _, q := range s.Quotas {
		if len(q.Values) == 0 {
			continue
		}
		e := kadm.AlterClientQuotaEntry{}
		for _, c := range q.Entity {
			e.Entity = append(e.Entity, kadm.ClientQuotaEntityComponent{Type: c.Type, Name: c.Name})
		}
		for k, v := range q.Values {
			e.Ops = append(e.Ops, kadm.AlterClientQuotaOp{Key: k, Value: v})
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return nil
	}
	res, err := kadm.NewClient(cl).AlterClientQuotas(ctx, entries)
	if err != nil {
		return fmt.Errorf("alter client quotas of %d entities: %w", len(entries), err)
	}
	var errs []error
	for _, r := range res {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("alter client quota %s: %w%s", r.Entity, r.Err, msgSuffix(r.ErrMessage)))
		}
	}
	return errors.Join(errs...)
}

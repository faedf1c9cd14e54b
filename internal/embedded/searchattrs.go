package embedded

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kbr-project/kbr/internal/names"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// SearchAttributes are the custom search attributes kbr workflows use.
// On SQLite each maps to one of the pre-defined Keyword01..Keyword10 columns.
var SearchAttributes = map[string]enums.IndexedValueType{
	names.AttrCluster:       enums.INDEXED_VALUE_TYPE_KEYWORD,
	names.AttrTask:          enums.INDEXED_VALUE_TYPE_KEYWORD,
	names.AttrKind:          enums.INDEXED_VALUE_TYPE_KEYWORD,
	names.AttrStatus:        enums.INDEXED_VALUE_TYPE_KEYWORD,
	names.AttrRecoveryPoint: enums.INDEXED_VALUE_TYPE_KEYWORD,
}

// RegisterSearchAttributes makes sure every entry of SearchAttributes exists
// in namespace, through the operator service. It is idempotent: attributes
// that already exist with the right type are left alone; one that exists
// with a different type is an error. When it had to add attributes it waits
// (bounded by ctx) until the frontend accepts queries on them, so workflows
// can be started with them right after it returns.
func RegisterSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	return registerSearchAttributes(ctx, c.OperatorService(), c.WorkflowService(), namespace, SearchAttributes)
}

func registerSearchAttributes(
	ctx context.Context,
	ops operatorservice.OperatorServiceClient,
	wfs workflowservice.WorkflowServiceClient,
	namespace string,
	want map[string]enums.IndexedValueType,
) error {
	if namespace == "" {
		return errors.New("register search attributes: namespace is empty")
	}
	missing, err := missingSearchAttributes(ctx, ops, namespace, want)
	if err != nil {
		return err
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = ops.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        namespace,
		SearchAttributes: missing,
	})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("add search attributes %s to namespace %q: %w",
			strings.Join(slices.Sorted(maps.Keys(missing)), ", "), namespace, err)
	}
	// Someone may have raced us, or the store applies the change
	// asynchronously: check what is there now.
	if err := waitFor(ctx, func() (bool, error) {
		m, err := missingSearchAttributes(ctx, ops, namespace, want)
		return len(m) == 0, err
	}); err != nil {
		return fmt.Errorf("search attributes not visible in namespace %q: %w", namespace, err)
	}
	// Each service caches namespace metadata (on SQL stores the search
	// attributes live there); wait until the frontend validates queries
	// using all of them.
	return waitFor(ctx, func() (bool, error) {
		_, err := wfs.CountWorkflowExecutions(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Namespace: namespace,
			Query:     isNullQuery(missing),
		})
		var invalid *serviceerror.InvalidArgument
		if errors.As(err, &invalid) {
			return false, nil
		}
		// Any other answer (including errors unrelated to the query) means the
		// attributes are known; we do not want to fail registration over it.
		return true, nil
	})
}

// missingSearchAttributes lists the attributes of want that namespace lacks,
// failing if one exists with another type.
func missingSearchAttributes(
	ctx context.Context,
	ops operatorservice.OperatorServiceClient,
	namespace string,
	want map[string]enums.IndexedValueType,
) (map[string]enums.IndexedValueType, error) {
	resp, err := ops.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return nil, fmt.Errorf("list search attributes of namespace %q: %w", namespace, err)
	}
	have := resp.GetCustomAttributes()
	missing := map[string]enums.IndexedValueType{}
	for name, typ := range want {
		got, ok := have[name]
		if !ok {
			missing[name] = typ
			continue
		}
		if got != typ {
			return nil, fmt.Errorf("search attribute %s exists in namespace %q with type %s, want %s",
				name, namespace, got, typ)
		}
	}
	return missing, nil
}

func isNullQuery(attrs map[string]enums.IndexedValueType) string {
	names := slices.Sorted(maps.Keys(attrs))
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + " IS NULL"
	}
	return strings.Join(parts, " AND ")
}

// waitFor polls cond until it reports true, returns an error, or ctx ends.
func waitFor(ctx context.Context, cond func() (bool, error)) error {
	delay := 50 * time.Millisecond
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		if delay < time.Second {
			delay *= 2
		}
	}
}

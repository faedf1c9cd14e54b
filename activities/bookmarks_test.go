package activities

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbr-project/kbr/internal/restoreplan"
)

// A restore's first run finds no bookmark group. Brokers answer that either
// with no offsets (Kafka) or GROUP_ID_NOT_FOUND (kfake, and Kafka's newer
// group coordinator for some versions): both mean no bookmarks, not an
// error that fails the restore's create step.
func TestReadBookmarksOfNoGroup(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	got, err := readBookmarks(ctx, adm, bookmarkGroup("r1"), []string{"orders"})
	if err != nil || len(got) != 0 {
		t.Fatalf("bookmarks of a group that does not exist: %v, %v; want none and no error", got, err)
	}
	// Written, they are read back.
	info := restoreplan.TopicInfo{Created: true}
	if err := writeBookmarks(ctx, adm, bookmarkGroup("r1"), "orders", info, map[int32]int64{0: 5, 1: 7}); err != nil {
		t.Fatal(err)
	}
	got, err = readBookmarks(ctx, adm, bookmarkGroup("r1"), []string{"orders"})
	if err != nil || got["orders"].Bases[0] != 5 || got["orders"].Bases[1] != 7 || !got["orders"].Info.Created {
		t.Fatalf("bookmarks read back: %+v, %v", got, err)
	}
}

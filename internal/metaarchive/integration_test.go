package metaarchive

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/kbr-project/kbr/internal/kmeta"
	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/internal/zkmeta"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestArchiveRealZKMode writes the metadata of the stack's ZooKeeper-mode
// cluster (Admin API snapshot and znode tree) and reads it back unchanged.
func TestArchiveRealZKMode(t *testing.T) {
	env := testenv.Load(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.ZKModeBootstrap...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	s, err := kmeta.Take(ctx, cl, kmeta.Options{Groups: true, IncludeInternal: true})
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	servers, _ := zkmeta.SplitConnect(env.ZKConnect)
	zc, err := zkmeta.Connect(ctx, servers, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer zc.Close()
	tree, err := zkmeta.Snapshot(ctx, zc, env.ZKChroot)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	var buf bytes.Buffer
	if err := WriteArchive(&buf, s, tree); err != nil {
		t.Fatalf("WriteArchive: %v", err)
	}
	size := buf.Len()
	gs, gt, err := ReadArchive(&buf)
	if err != nil {
		t.Fatalf("ReadArchive: %v", err)
	}
	if !reflect.DeepEqual(gs, s) {
		t.Errorf("snapshot changed in the round trip")
	}
	if !reflect.DeepEqual(gt, tree) {
		t.Errorf("tree changed in the round trip")
	}
	var nilData, emptyData int
	for _, z := range gt.Znodes {
		if z.Data == nil {
			nilData++
		} else if len(z.Data) == 0 {
			emptyData++
		}
	}
	t.Logf("archive of %d bytes: Kafka %s, %d topics, %d znodes (%d with null data, %d with empty data)",
		size, gs.KafkaVersion, len(gs.Topics), len(gt.Znodes), nilData, emptyData)
}

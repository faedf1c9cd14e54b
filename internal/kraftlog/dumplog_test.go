package kraftlog_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kbr-project/kbr/internal/kraftlog"
	"github.com/kbr-project/kbr/internal/kraftlog/kraftlogtest"
	"github.com/kbr-project/kbr/internal/testenv"
)

// TestDecoderAgainstKafka copies the stack's KRaft node's metadata log the
// way a backup does (the newest snapshot whole, the log after it up to its
// size now) and reads every record of the copies with kbr's decoder and
// with Kafka's own (kafka-dump-log --cluster-metadata-decoder): they must
// agree record for record. Then the image of the copy lists the topics.
func TestDecoderAgainstKafka(t *testing.T) {
	env := testenv.Load(t)
	jars := filepath.Join(env.StackDir, "lib", "kafka4")
	src := filepath.Join(env.Broker("kraft1").LogDirs[0], kraftlog.Dir)
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	var files []kraftlog.FileInfo
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			files = append(files, kraftlog.FileInfo{Name: e.Name(), Size: fi.Size()})
		}
	}
	plan, err := kraftlog.PlanBackup(files)
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	im := kraftlog.NewImage()
	total := 0
	for _, f := range plan.Files {
		in, err := os.Open(filepath.Join(src, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		res, err := kraftlog.CopyBatches(out, in, f.Limit)
		in.Close()
		out.Close()
		if err != nil {
			t.Fatalf("copy %s: %v", f.Name, err)
		}
		t.Logf("%s: %d batches, offsets %d..%d", f.Name, res.Batches, res.FirstOffset, res.NextOffset)
		total += kraftlogtest.CrossCheck(t, jars, filepath.Join(dst, f.Name))
		r, _ := os.Open(filepath.Join(dst, f.Name))
		if f.Kind == kraftlog.KindSnapshot {
			err = im.ReadSnapshot(r, *plan.Snapshot)
		} else {
			err = im.ReadSegment(r, plan.Snapshot.EndOffset)
		}
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	s := im.Summary()
	t.Logf("%d records compared; image: %d topics, %d partitions, features %v, voters %v, next offset %d", total, len(s.Topics), s.Partitions, s.Features, s.Voters, s.NextOffset)
	if s.Features["metadata.version"] == 0 || len(s.Voters) != 1 || s.NextOffset < plan.Snapshot.EndOffset {
		t.Errorf("image %+v", s)
	}
}

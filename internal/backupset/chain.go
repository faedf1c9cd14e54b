package backupset

import "fmt"

// Flatten turns a chain of recovery points into the view a restore reads:
// chain[0] is the recovery point asked for, chain[i+1] is chain[i]'s Base,
// and the last one is full. In the result every partition lists the
// segments of every recovery point it needs, oldest first, each segment
// with its own compression; segments wholly below the partition's
// StartOffset (the log start offset at chain[0]'s cut, so records since
// deleted by retention are left out, as a full backup would) are dropped.
// A segment straddling StartOffset stays: readers skip its records below it.
func Flatten(chain []*Manifest) (*Manifest, error) {
	if len(chain) == 0 {
		return nil, fmt.Errorf("empty recovery point chain")
	}
	for i, m := range chain {
		if i < len(chain)-1 && m.Base == "" {
			return nil, fmt.Errorf("recovery point chain: link %d has no base but is not the last", i)
		}
	}
	if last := chain[len(chain)-1]; last.Kind == KindIncremental || last.Base != "" {
		return nil, fmt.Errorf("recovery point chain ends at an incremental recovery point (base %q missing)", last.Base)
	}
	var prev *Manifest
	for i := len(chain) - 1; i >= 0; i-- {
		m := *chain[i]
		m.Partitions = make([]PartitionBackup, len(chain[i].Partitions))
		for j, p := range chain[i].Partitions {
			own := make([]SegmentInfo, len(p.Segments))
			for k, s := range p.Segments {
				if s.Compression == "" {
					s.Compression = m.Compression
				}
				own[k] = s
			}
			var segs []SegmentInfo
			if p.Incremental {
				var base *PartitionBackup
				if prev != nil {
					base = prev.Partition(p.Topic, p.Partition)
				}
				if base == nil || base.TopicID != p.TopicID {
					return nil, fmt.Errorf("recovery point %s: incremental partition %s[%d] has no match in its base %s", chain[i].ExecutedAt.Format(TimeFormat), p.Topic, p.Partition, chain[i].Base)
				}
				segs = append(segs, base.Segments...)
			}
			segs = append(segs, own...)
			kept := segs[:0:0]
			var records int64
			for _, s := range segs {
				if s.Records > 0 && s.LastOffset < p.StartOffset {
					continue
				}
				kept = append(kept, s)
				records += s.Records
			}
			p.Segments, p.Records = kept, records
			p.Incremental, p.From = false, 0
			m.Partitions[j] = p
		}
		prev = &m
	}
	prev.ComputeTotals()
	return prev, nil
}

// CountFrom is the number of records of segs at or above floor: exact for
// segments wholly above it, while straddling ones are counted by count.
func CountFrom(segs []SegmentInfo, floor int64, count func(SegmentInfo) (int64, error)) (int64, error) {
	var n int64
	for _, s := range segs {
		switch {
		case s.Records == 0 || s.LastOffset < floor:
		case s.FirstOffset >= floor:
			n += s.Records
		default:
			c, err := count(s)
			if err != nil {
				return 0, err
			}
			n += c
		}
	}
	return n, nil
}

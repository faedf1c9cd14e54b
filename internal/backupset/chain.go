package backupset

import (
	"fmt"
	"sort"
)

// Loaded is a recovery point read from its target: the manifest and, for
// format 2, every part (in the manifest's order).
type Loaded struct {
	Name     string
	Manifest *Manifest
	Parts    []*Part
}

// partitions lists a loaded recovery point's partitions with their own data.
func (l Loaded) partitions() []PartitionBackup {
	m := l.Manifest
	if m.Format == 1 {
		out := make([]PartitionBackup, len(m.Partitions))
		for i, p := range m.Partitions {
			segs := make([]SegmentInfo, len(p.Segments))
			for k, s := range p.Segments {
				if s.Compression == "" {
					s.Compression = m.Compression
				}
				segs[k] = s
			}
			p.Sources = []Source{{Manifest: l.Name, Format: 1, Segments: segs, Compression: m.Compression, Records: p.Records}}
			out[i] = p
		}
		return out
	}
	var out []PartitionBackup
	for k, part := range l.Parts {
		for _, p := range part.Partitions {
			p.Unit = k
			src := Source{Manifest: l.Name, Format: m.Format, Compression: m.Compression, Records: p.Records}
			for _, k := range p.Packs {
				src.Packs = append(src.Packs, part.Files[k])
			}
			p.Sources = []Source{src}
			out = append(out, p)
		}
	}
	return out
}

// View is what a restore reads of a recovery point: every partition with
// the data of each recovery point of its chain it needs, oldest first.
type View struct {
	// Manifest is the recovery point asked for; its Partitions are the
	// view's, sorted by topic and partition, each with its Sources.
	*Manifest
	Name string
	// Chain names the recovery points read, the one asked for first.
	Chain []string
}

// Flatten turns a chain of recovery points into the view a restore reads:
// chain[0] is the recovery point asked for, chain[i+1] is chain[i]'s Base,
// and the last one is full. Every partition lists the data of every
// recovery point it needs, oldest first; a recovery point whose range of
// the partition ends at or below the partition's StartOffset (the log start
// offset at chain[0]'s cut: records since deleted by retention are left
// out, as a full backup would leave them) is dropped. Data straddling
// StartOffset stays: readers skip records below it.
func Flatten(chain []Loaded) (*View, error) {
	if len(chain) == 0 {
		return nil, fmt.Errorf("empty recovery point chain")
	}
	for i, l := range chain {
		if i < len(chain)-1 && l.Manifest.Base != chain[i+1].Name {
			return nil, fmt.Errorf("recovery point chain: %s names base %q, not %s", l.Name, l.Manifest.Base, chain[i+1].Name)
		}
	}
	if last := chain[len(chain)-1]; last.Manifest.Kind == KindIncremental || last.Manifest.Base != "" {
		return nil, fmt.Errorf("recovery point chain ends at an incremental recovery point (base %q missing)", last.Manifest.Base)
	}
	type key struct {
		topic string
		part  int32
	}
	var prev map[key]PartitionBackup
	for i := len(chain) - 1; i >= 0; i-- {
		cur := map[key]PartitionBackup{}
		for _, p := range chain[i].partitions() {
			if p.Incremental {
				base, ok := prev[key{p.Topic, p.Partition}]
				if !ok || base.TopicID != p.TopicID {
					return nil, fmt.Errorf("recovery point %s: incremental partition %s[%d] has no match in its base %s", chain[i].Name, p.Topic, p.Partition, chain[i].Manifest.Base)
				}
				p.Sources = append(append([]Source(nil), base.Sources...), p.Sources...)
				p.Bytes += base.Bytes
			}
			cur[key{p.Topic, p.Partition}] = p
		}
		prev = cur
	}
	v := &View{Name: chain[0].Name}
	for _, l := range chain {
		v.Chain = append(v.Chain, l.Name)
	}
	m := *chain[0].Manifest
	m.Partitions = nil
	ends := map[string]map[key]int64{} // recovery point -> partition -> its end offset
	for _, l := range chain {
		e := map[key]int64{}
		for _, p := range l.partitions() {
			e[key{p.Topic, p.Partition}] = p.EndOffset
		}
		ends[l.Name] = e
	}
	for k, p := range prev {
		kept := p.Sources[:0:0]
		for _, s := range p.Sources {
			if s.Manifest != chain[0].Name && ends[s.Manifest][k] <= p.StartOffset {
				continue // wholly below the log start at the last cut
			}
			if s.Format == 1 {
				segs := s.Segments[:0:0]
				for _, seg := range s.Segments {
					if seg.Records > 0 && seg.LastOffset < p.StartOffset {
						continue
					}
					segs = append(segs, seg)
				}
				s.Segments, s.Records = segs, 0
				for _, seg := range segs {
					s.Records += seg.Records
				}
			}
			kept = append(kept, s)
		}
		p.Sources, p.Records = kept, 0
		for _, s := range kept {
			p.Records += s.Records
		}
		p.Incremental, p.From = false, 0
		m.Partitions = append(m.Partitions, p)
	}
	sort.Slice(m.Partitions, func(i, j int) bool {
		a, b := m.Partitions[i], m.Partitions[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	v.Manifest = &m
	return v, nil
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

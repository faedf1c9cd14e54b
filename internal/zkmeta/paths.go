package zkmeta

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// ValidPath checks that p is a path ZooKeeper itself would accept and that
// cannot be read two ways: absolute, no empty segment (so no trailing "/"
// except for the root), no "." or ".." segment, valid UTF-8 with none of
// the characters ZooKeeper refuses (controls, U+007F-U+009F, the private
// use area and U+FFF0-U+FFFF). Paths from a backup are checked with it
// before anything maps them onto a live chroot.
func ValidPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q is not absolute", p)
	}
	if p == "/" {
		return nil
	}
	for _, seg := range strings.Split(p[1:], "/") {
		switch seg {
		case "":
			return fmt.Errorf("%q has an empty segment", p)
		case ".", "..":
			return fmt.Errorf("%q has a %q segment", p, seg)
		}
	}
	if !utf8.ValidString(p) {
		return fmt.Errorf("%q is not valid UTF-8", p)
	}
	for _, r := range p {
		switch {
		case r < 0x20 || (r >= 0x7f && r <= 0x9f):
			return fmt.Errorf("%q has a control character", p)
		case (r >= 0xe000 && r <= 0xf8ff) || r >= 0xfff0 && r <= 0xffff:
			return fmt.Errorf("%q has a character ZooKeeper refuses (U+%04X)", p, r)
		}
	}
	return nil
}

// inside tells whether p is chroot or below it, on a "/" boundary:
// /kafka/a is inside /kafka, /kafkaX/a is not.
func inside(chroot, p string) bool {
	return chroot == "/" || p == chroot || strings.HasPrefix(p, chroot+"/")
}

// zookeeperOwn tells a path in ZooKeeper's own subtree (quotas, the
// ensemble's config), which is not Kafka's and is never restored.
func zookeeperOwn(p string) bool { return p == "/zookeeper" || strings.HasPrefix(p, "/zookeeper/") }

// Validate checks every path of a tree as read from a backup: its chroot
// ("" counts as "/") and each znode are valid paths (ValidPath), each
// znode is inside the chroot on a "/" boundary, none is in ZooKeeper's own
// /zookeeper subtree, and none appears twice. Errors name the znode by its
// position (from 1) and path.
func (t *Tree) Validate() error {
	chroot := t.Chroot
	if chroot == "" {
		chroot = "/"
	}
	if err := ValidPath(chroot); err != nil {
		return fmt.Errorf("chroot %w", err)
	}
	if zookeeperOwn(chroot) {
		return fmt.Errorf("chroot %s is in ZooKeeper's own /zookeeper subtree", chroot)
	}
	seen := make(map[string]bool, len(t.Znodes))
	for i, z := range t.Znodes {
		if err := ValidPath(z.Path); err != nil {
			return fmt.Errorf("znode %d: %w", i+1, err)
		}
		if !inside(chroot, z.Path) {
			return fmt.Errorf("znode %d: %q is outside the chroot %s", i+1, z.Path, chroot)
		}
		if zookeeperOwn(z.Path) {
			return fmt.Errorf("znode %d: %q is in ZooKeeper's own /zookeeper subtree", i+1, z.Path)
		}
		if seen[z.Path] {
			return fmt.Errorf("znode %d: %q appears twice", i+1, z.Path)
		}
		seen[z.Path] = true
	}
	return nil
}

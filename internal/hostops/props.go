// Package hostops holds the host-local steps of a metadata restore that run
// on a broker's own machine (through `kbr agent`): find the broker's log
// dirs, fix cluster.id in their meta.properties, stop and start the Kafka
// service, and measure free disk. It has no Temporal in it, so tests drive
// it directly.
package hostops

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// DefaultLogDir is Kafka's log.dir when server.properties sets neither
// log.dirs nor log.dir.
const DefaultLogDir = "/tmp/kafka-logs"

// ReadProperties reads a Java properties file: key=value, key: value or
// key value; # and ! comments; a trailing backslash continues the line.
// Escapes other than the line continuation are kept as written (Kafka's
// server.properties does not use them for paths).
func ReadProperties(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseProperties(data), nil
}

func parseProperties(data []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var cont strings.Builder
	for sc.Scan() {
		line := strings.TrimLeft(sc.Text(), " \t\f")
		if cont.Len() == 0 && (line == "" || line[0] == '#' || line[0] == '!') {
			continue
		}
		if strings.HasSuffix(line, `\`) && !strings.HasSuffix(line, `\\`) {
			cont.WriteString(strings.TrimSuffix(line, `\`))
			continue
		}
		cont.WriteString(line)
		k, v := splitProperty(cont.String())
		cont.Reset()
		if k != "" {
			out[k] = v
		}
	}
	if cont.Len() > 0 {
		if k, v := splitProperty(cont.String()); k != "" {
			out[k] = v
		}
	}
	return out
}

func splitProperty(line string) (string, string) {
	i := strings.IndexAny(line, "=: \t")
	if i < 0 {
		return strings.TrimSpace(line), ""
	}
	k := strings.TrimSpace(line[:i])
	rest := strings.TrimLeft(line[i:], " \t")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = rest[1:]
	}
	return k, strings.TrimSpace(rest)
}

// LogDirs returns the broker's log directories from its server.properties:
// log.dirs (comma-separated) wins over log.dir, as in Kafka; with neither,
// Kafka's default /tmp/kafka-logs.
func LogDirs(serverProperties string) ([]string, error) {
	props, err := ReadProperties(serverProperties)
	if err != nil {
		return nil, fmt.Errorf("read broker config: %w", err)
	}
	v, ok := props["log.dirs"]
	if !ok || strings.TrimSpace(v) == "" {
		v, ok = props["log.dir"]
	}
	if !ok || strings.TrimSpace(v) == "" {
		return []string{DefaultLogDir}, nil
	}
	var dirs []string
	for _, d := range strings.Split(v, ",") {
		if d = strings.TrimSpace(d); d != "" {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("%s: log.dirs is empty", serverProperties)
	}
	return dirs, nil
}

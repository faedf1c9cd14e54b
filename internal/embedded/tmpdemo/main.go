// Temporary measurement binary; removed after use.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"

	"github.com/kbr-project/kbr/internal/embedded"
)

func main() {
	fp, _ := strconv.Atoi(os.Args[2])
	up, _ := strconv.Atoi(os.Args[3])
	s, err := embedded.Start(context.Background(), embedded.Options{DataDir: os.Args[1], FrontendPort: fp, UIPort: up})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("ready", s.FrontendAddress(), s.UIAddress())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt)
	<-ch
	fmt.Println("stop:", s.Stop())
}

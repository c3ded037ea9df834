// The bed's sandbox ("pause") container: holds a pod's namespaces, reaps orphaned children
// (it is PID 1 of pods that share their PID namespace) and exits on SIGTERM or SIGINT.
// The bed cannot pull registry.k8s.io/pause, so this is built and packed as firecamp.local/pause.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}

// A minimal HTTP server for neko-rebuilder's worked example of why builds differ.
package main

import (
	"fmt"
	"net/http"

	"github.com/google/uuid"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Hello from a reproducible image, request %s\n", uuid.NewString())
	})
	_ = http.ListenAndServe(":8080", nil)
}

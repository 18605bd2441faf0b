// gocgi: the smallest CGI host in Go's standard library (net/http/cgi), one of the
// peers bench/run.sh measures. Usage: gocgi CGI_DIR ADDR — serves CGI_DIR/NAME at /cgi/NAME.
package main

import (
	"log"
	"net/http"
	"net/http/cgi"
	"os"
	"path/filepath"
)

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: gocgi CGI_DIR ADDR")
	}
	dir, addr := os.Args[1], os.Args[2]
	names, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		log.Fatal(err)
	}
	for _, path := range names {
		name := filepath.Base(path)
		http.Handle("/cgi/"+name, &cgi.Handler{Path: path, Root: "/cgi/" + name, Dir: dir})
	}
	log.Fatal(http.ListenAndServe(addr, nil))
}

// Command etcd is the upstream etcd server, built from the version pinned in
// hack/versions.env so the local control plane needs no downloaded binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}

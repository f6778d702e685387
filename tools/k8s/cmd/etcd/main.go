// Command etcd is etcd's server (go.etcd.io/etcd/server/v3 etcdmain), built from this
// module so its version follows the etcd client that k8s.io/kubernetes uses.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}

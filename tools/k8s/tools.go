//go:build tools

// Package tools pins the Kubernetes commands build.sh builds, so `go mod tidy` keeps
// their dependencies in go.mod and go.sum. It is never compiled.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)

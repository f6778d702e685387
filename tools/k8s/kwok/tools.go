//go:build tools

// Package tools pins kwok's command for build.sh. kwok has its own module so its
// Kubernetes libraries (v0.33) do not mix with the v0.34 ones of the parent module.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"

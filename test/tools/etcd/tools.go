//go:build tools

// Package tools pins the etcd server main that the test control plane runs.
package tools

import _ "go.etcd.io/etcd/server/v3"

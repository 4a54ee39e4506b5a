// Package crds only anchors the cert-manager requirement, so `go mod download` fetches the
// pinned release whose deploy/crds directory holds the CRDs.
package crds

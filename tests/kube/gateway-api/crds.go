// Package crds only anchors the gateway-api requirement, so `go mod download` fetches the
// pinned release whose config/crd directory holds the CRDs.
package crds

import _ "sigs.k8s.io/gateway-api/apis/v1"

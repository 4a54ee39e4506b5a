// Pins the cert-manager release whose CRDs (deploy/crds) the tests install, so the
// cert-manager overlay can be checked by a real API server (scripts/kube-binaries copies
// them out of the module cache). Nothing here is built.
module edgewarden.dev/tests/kube/cert-manager

go 1.26.0

require github.com/cert-manager/cert-manager v1.21.2

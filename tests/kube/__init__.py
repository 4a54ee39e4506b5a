"""A real Kubernetes control plane for the tests: etcd, kube-apiserver and
kube-controller-manager as plain processes on loopback, built from pinned Go modules by
``scripts/kube-binaries`` (the way controller-runtime's envtest runs them).

``fixtures.kube_control_plane`` is the session fixture; ``controlplane.ControlPlane`` is the
same thing without pytest (the API-server benchmark uses it).
"""

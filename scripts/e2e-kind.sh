#!/usr/bin/env bash
# End-to-end test in a real cluster: creates a kind cluster, builds the image and loads it
# into the cluster, deploys deploy/overlays/kind, waits until the webhook really answers,
# runs `pytest tests/e2e` (enforcing), then switches the same cluster to the audit-only
# overlay and runs the audit-only tests. The cluster is deleted on exit, whatever happens.
#
# tests/e2e is the suite scripts/test runs against a local control plane (etcd and
# kube-apiserver as processes, the `apiserver` backend); here it runs against kind
# (EDGEWARDEN_E2E_BACKEND=kind). Tests that need the local control plane itself (an API
# server restart, its audit log, the server's command line) skip here with that reason.
#
#   scripts/e2e-kind.sh                  # needs docker (a running daemon), kind, kubectl
#   EDGEWARDEN_E2E_KEEP=1 scripts/e2e-kind.sh    # keep the cluster for debugging
#   KIND_NODE_IMAGE=kindest/node:v1.32.2 scripts/e2e-kind.sh   # another Kubernetes version
#   scripts/e2e-kind.sh -k loadbalancer  # extra arguments go to pytest
#
# See docs/deploy.md, "End-to-end tests on kind".
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

CLUSTER=${EDGEWARDEN_E2E_CLUSTER:-edgewarden-e2e}
IMAGE=${EDGEWARDEN_E2E_IMAGE:-edgewarden:dev}
KEEP=${EDGEWARDEN_E2E_KEEP:-0}
TIMEOUT=${EDGEWARDEN_E2E_TIMEOUT:-180}
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
NAMESPACE=edgewarden

say() { printf '\n== e2e-kind: %s\n' "$*"; }
die() { printf 'e2e-kind: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"; }

need docker "install Docker (a running daemon is needed to build the image)"
need kind "install kind: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
need kubectl "install kubectl"
docker info >/dev/null 2>&1 || die "the Docker daemon is not reachable (docker info failed)"
[ -x "$PYTHON" ] || die "no $PYTHON: run scripts/test once (it creates .venv), or set PYTHON"
"$PYTHON" -c "import kubernetes, pytest" 2>/dev/null \
  || die "$PYTHON lacks the kubernetes client or pytest (pip install -c constraints.txt -e '.[test]')"
# The ConfigMap must ship what policies/ says (see deploy/sync-policies.py).
python3 deploy/sync-policies.py --check
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  die "a kind cluster named $CLUSTER already exists; delete it (kind delete cluster --name $CLUSTER) or set EDGEWARDEN_E2E_CLUSTER"
fi

WORK=$(mktemp -d)
export KUBECONFIG="$WORK/kubeconfig"
CREATED=0

diagnostics() {
  echo "---- diagnostics (namespace $NAMESPACE) ----" >&2
  kubectl -n "$NAMESPACE" get all,secrets,configmaps -o wide >&2 || true
  kubectl -n "$NAMESPACE" describe pods >&2 || true
  kubectl -n "$NAMESPACE" logs -l app.kubernetes.io/name=edgewarden --all-containers \
    --prefix --tail=200 >&2 || true
  kubectl get validatingwebhookconfiguration edgewarden-validating -o yaml >&2 || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$CREATED" = 1 ]; then
    [ "$rc" = 0 ] || diagnostics
    if [ "$KEEP" = 1 ]; then
      echo "e2e-kind: keeping cluster $CLUSTER; KUBECONFIG=$KUBECONFIG" >&2
      echo "e2e-kind: delete it with: kind delete cluster --name $CLUSTER" >&2
      exit "$rc"
    fi
    say "deleting cluster $CLUSTER"
    kind delete cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG" || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "creating kind cluster $CLUSTER"
CREATED=1
kind create cluster --name "$CLUSTER" --config deploy/kind/cluster.yaml \
  --kubeconfig "$KUBECONFIG" --wait "${TIMEOUT}s" ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}
kubectl version

# The Gateway API CRDs of the pinned release (scripts/kube-binaries copies them from the Go
# module tests/kube/gateway-api), as the local backend installs them: the Gateway and
# route tests need them, and the webhook's watch cache follows the kinds the policies name.
GATEWAY_CRDS="${EDGEWARDEN_KUBE_CACHE:-$HOME/.cache/edgewarden/kube}/current/gateway-api-crds/standard"
if [ -d "$GATEWAY_CRDS" ]; then
  say "installing the Gateway API CRDs from $GATEWAY_CRDS"
  for crd in "$GATEWAY_CRDS"/*.yaml; do
    case "$(basename "$crd")" in kustomization.yaml | *_vap_*) continue ;; esac
    kubectl apply --server-side -f "$crd"
  done
  kubectl wait --for=condition=Established --timeout="${TIMEOUT}s" \
    crd/gateways.gateway.networking.k8s.io crd/httproutes.gateway.networking.k8s.io
else
  say "no Gateway API CRDs in $GATEWAY_CRDS (run scripts/kube-binaries): the Gateway tests will fail"
fi

say "building $IMAGE"
docker build -t "$IMAGE" .
say "loading $IMAGE into the cluster"
kind load docker-image "$IMAGE" --name "$CLUSTER"

# Deploy one kustomization and wait for every pod of the new revision to be ready (old pods
# gone: `rollout status` waits for them too).
deploy() {
  kubectl apply -k "$1"
  kubectl -n "$NAMESPACE" rollout status deployment/edgewarden --timeout="${TIMEOUT}s"
}

# A production-labelled namespace where a NodePort Service is what the webhook refuses.
kubectl apply -f - <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  name: e2e-readiness-probe
  labels: {environment: production}
EOF

nodeport_dry_run() {
  kubectl create --dry-run=server -o name -f - 2>&1 <<EOF
apiVersion: v1
kind: Service
metadata: {name: $1, namespace: e2e-readiness-probe}
spec:
  type: NodePort
  selector: {app: probe}
  ports: [{port: 80}]
EOF
}

# The kind overlay fails open (failurePolicy Ignore), so "the create went through" proves
# nothing: wait until a denial naming our policy comes back (the caBundle is patched, the
# Service has ready endpoints, the policies are loaded). Bounded.
wait_until_enforcing() {
  local deadline=$((SECONDS + TIMEOUT)) out
  while ((SECONDS < deadline)); do
    if ! out=$(nodeport_dry_run "e2e-probe-$SECONDS"); then
      if grep -q deny-nodeport-in-production <<<"$out"; then
        echo "webhook answers: $out"
        return 0
      fi
      echo "not yet: $out"
    fi
    sleep 2
  done
  die "the webhook did not refuse a NodePort Service in a production namespace within ${TIMEOUT}s"
}

# Audit-only denies nothing, so wait until the new (dry-run) server has recorded a
# dry-run request in its audit log: then it, not a leftover enforcing pod, is answering.
wait_until_auditing() {
  local deadline=$((SECONDS + TIMEOUT)) name out logs line
  while ((SECONDS < deadline)); do
    name="e2e-audit-probe-$SECONDS"
    if out=$(nodeport_dry_run "$name"); then
      # The audit log is JSON lines on stdout: {"name": "<name>", "policy": "...", ...}.
      logs=$(kubectl -n "$NAMESPACE" logs -l app.kubernetes.io/name=edgewarden --tail=-1 || true)
      line=$(grep -F "\"$name\"" <<<"$logs" || true)
      if [[ $line == *deny-nodeport-in-production* ]]; then
        echo "audit-only webhook answers and records: $line"
        return 0
      fi
    else
      echo "still refused (an enforcing pod answered?): $out"
    fi
    sleep 2
  done
  die "the audit-only webhook did not record a NodePort dry-run within ${TIMEOUT}s"
}

export EDGEWARDEN_E2E_KUBECONFIG="$KUBECONFIG"
export EDGEWARDEN_E2E_BACKEND=kind

say "deploying deploy/overlays/kind"
deploy deploy/overlays/kind
wait_until_enforcing
say "pytest tests/e2e (enforcing)"
EDGEWARDEN_E2E_MODE=enforce "$PYTHON" -m pytest -p no:cacheprovider tests/e2e "$@"

# The audit-only overlay as shipped (it builds on production), with only the image swapped
# for the one loaded into kind.
# (kustomize refuses absolute paths to a base: give it a relative one.)
mkdir -p "$WORK/audit-only"
AUDIT_BASE=$(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' \
  "$REPO/deploy/overlays/audit-only" "$WORK/audit-only")
cat >"$WORK/audit-only/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $AUDIT_BASE
images:
  - name: edgewarden
    newName: ${IMAGE%:*}
    newTag: ${IMAGE##*:}
patches:
  - target: {kind: Deployment, name: edgewarden}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/imagePullPolicy
        value: Never
      - op: replace
        path: /spec/template/spec/initContainers/0/imagePullPolicy
        value: Never
EOF
say "switching to deploy/overlays/audit-only"
deploy "$WORK/audit-only"
wait_until_auditing
say "pytest tests/e2e (audit-only)"
EDGEWARDEN_E2E_MODE=audit-only "$PYTHON" -m pytest -p no:cacheprovider tests/e2e "$@"
say "all end-to-end tests passed"

#!/usr/bin/env bash
# The GitHub Action's check step (action.yml): judge the manifests, print the findings table
# to the log, write the job summary, and the SARIF report when one is asked for.
#
# Environment (the action's inputs, never spliced into script text): MANIFESTS (paths
# separated by spaces or newlines; a Helm chart's folder is judged as `helm template`
# renders it, a kustomization's as `kubectl kustomize` does), NAMESPACE (check's -n: objects
# that name none, a chart's release), CLUSTER_STATE, NAMESPACE_LABELS (one NS=k=v,... per line), POLICIES,
# SARIF_FILE (empty: none, unless UPLOAD_SARIF is "true": edgewarden.sarif), SUMMARY
# ("true": append Markdown to $GITHUB_STEP_SUMMARY); ACTION_PATH, RUNNER_TEMP,
# GITHUB_OUTPUT. Outputs: exit-code, report-file (check's JSON), sarif-file. Exits with check's code when it is 2 or more (bad input, a policy that does
# not load); 1 (an Enforce policy would deny) is left to the action's last step, after the
# upload.
set -uo pipefail

args=()
for path in $MANIFESTS; do
  # A chart or a kustomization is judged as it renders, anything else as it stands.
  if [ -f "$path/Chart.yaml" ]; then args+=(--chart "$path")
  elif [ -f "$path/kustomization.yaml" ] || [ -f "$path/kustomization.yml" ] \
      || [ -f "$path/Kustomization" ]; then args+=(--kustomize "$path")
  else args+=(-f "$path")
  fi
done
if [ -n "${NAMESPACE:-}" ]; then args+=(--namespace "$NAMESPACE"); fi
if [ -n "${CLUSTER_STATE:-}" ]; then args+=(--cluster-state "$CLUSTER_STATE"); fi
while IFS= read -r labels; do
  if [ -n "$labels" ]; then args+=(--namespace-labels "$labels"); fi
done <<< "${NAMESPACE_LABELS:-}"
if [ -n "${POLICIES:-}" ]; then args+=(--policies "$POLICIES"); fi
sarif="${SARIF_FILE:-}"
if [ -z "$sarif" ] && [ "${UPLOAD_SARIF:-false}" = true ]; then sarif=edgewarden.sarif; fi

# The table, as `edgewarden check` prints it on a terminal: a log is no terminal, so its
# width is set (wide enough for a path and a message side by side).
status=0
COLUMNS="${EDGEWARDEN_LOG_COLUMNS:-180}" edgewarden check "${args[@]}" || status=$?
echo "exit-code=$status" >> "$GITHUB_OUTPUT"
if [ "$status" -gt 1 ]; then
  if [ "${SUMMARY:-true}" = true ] && [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    printf '## edgewarden check\n\n:x: The check could not judge the manifests (exit code %s): see the log.\n' \
      "$status" >> "$GITHUB_STEP_SUMMARY"
  fi
  exit "$status"
fi

# The same judgement again for the machine-readable reports; its notes were printed above.
report="$RUNNER_TEMP/edgewarden-check.json"
again=0
errors="$RUNNER_TEMP/edgewarden-check.err"
edgewarden check "${args[@]}" -o json --out "$report" >/dev/null 2>"$errors" || again=$?
if [ "$again" -ne "$status" ]; then
  cat "$errors" >&2
  echo "::error title=edgewarden::check -o json exited $again after $status" >&2
  exit 2
fi
echo "report-file=$report" >> "$GITHUB_OUTPUT"
if [ "${SUMMARY:-true}" = true ] && [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  python "$ACTION_PATH/scripts/action/summary.py" "$report" >> "$GITHUB_STEP_SUMMARY"
fi
if [ -n "$sarif" ]; then
  again=0
  edgewarden check "${args[@]}" -o sarif --out "$sarif" >/dev/null 2>"$errors" || again=$?
  if [ "$again" -ne "$status" ]; then
    cat "$errors" >&2
    echo "::error title=edgewarden::check -o sarif exited $again after $status" >&2
    exit 2
  fi
  echo "sarif-file=$sarif" >> "$GITHUB_OUTPUT"
fi
exit 0

#!/usr/bin/env bash
# The GitHub Action's install (action.yml): edgewarden from a pinned wheel, not from source.
#
#   install.sh plan      resolve the version, write the outputs `version`, `pip-cache-dir`
#                        and `cache-key` (the pip cache is restored by actions/cache between)
#   install.sh install   install edgewarden==VERSION and its dependencies, pinned by the
#                        action's constraints.txt, into $RUNNER_TEMP/edgewarden-venv, and put
#                        that venv's bin on $GITHUB_PATH
#
# Environment: ACTION_PATH (the action's checkout), EDGEWARDEN_VERSION (the `version` input:
# empty means this action's own version, read from its webhook/__init__.py, so `uses: ...@v0.2.0`
# runs 0.2.0; `source` builds the action's checkout instead, for an unreleased ref),
# RUNNER_TEMP, GITHUB_OUTPUT, GITHUB_PATH. pip's own variables (PIP_INDEX_URL,
# PIP_FIND_LINKS...) reach pip, for a private index or a mirror.
set -euo pipefail

action_version() {
  # The one place the version is written: webhook/__init__.py's __version__ (pyproject.toml
  # reads it from there; the release workflow holds the tag to it).
  local found
  found="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$ACTION_PATH/webhook/__init__.py")"
  if [ -z "$found" ]; then
    echo "::error title=edgewarden::no __version__ in the action's webhook/__init__.py; set the version input" >&2
    exit 2
  fi
  echo "$found"
}

version="${EDGEWARDEN_VERSION:-}"
if [ -z "$version" ]; then version="$(action_version)"; fi
if [ "$version" != source ] && ! [[ "$version" =~ ^[0-9]+(\.[0-9]+)*([a-z]+[0-9]*)?(\.post[0-9]+)?(\.dev[0-9]+)?$ ]]; then
  echo "::error title=edgewarden::version input '$version' is not a release version (like 0.2.0) nor 'source'" >&2
  exit 2
fi

case "${1:-}" in
  plan)
    constraints="$(sha256sum "$ACTION_PATH/constraints.txt" | cut -c1-16)"
    python_version="$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    {
      echo "version=$version"
      echo "pip-cache-dir=$(python -m pip cache dir 2>/dev/null || echo "$HOME/.cache/pip")"
      echo "cache-key=edgewarden-pip-${RUNNER_OS:-os}-py$python_version-$version-$constraints"
    } >> "$GITHUB_OUTPUT"
    ;;
  install)
    venv="$RUNNER_TEMP/edgewarden-venv"
    python -m venv "$venv"
    if [ "$version" = source ]; then spec="$ACTION_PATH"; else spec="edgewarden==$version"; fi
    "$venv/bin/python" -m pip install --disable-pip-version-check --quiet \
      -c "$ACTION_PATH/constraints.txt" "$spec"
    echo "$venv/bin" >> "$GITHUB_PATH"
    "$venv/bin/edgewarden" --version
    ;;
  *)
    echo "usage: install.sh plan|install" >&2
    exit 2
    ;;
esac

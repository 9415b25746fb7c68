#!/usr/bin/env bash
# Quick start: render this template with its defaults and run the generated gateway locally,
# answering one streaming request.
#
#   scripts/quickstart.sh [DIR]     # DIR: where the project goes (default: a new temporary directory)
#
# Needs only python3 (3.11+, with its venv module) and access to PyPI. It
#   1. makes a virtualenv with Copier (cached in ~/.cache/litellm-claude-code/quickstart-venv);
#   2. renders this checkout with `copier copy --defaults` into DIR;
#   3. runs the generated project's `make venv secrets smoke`: its virtualenv, a secrets.env, and
#      one streaming chat completion through a throwaway LiteLLM proxy on a free local port, with
#      the official openai client, printing the answer as it streams;
#   4. issues a person's key (keys/keys.json, as `make key NAME=quickstart`) and prints it with
#      docs/clients.md's Claude Code and Codex settings for the project's URL, for `make run`.
# With a Claude credential in the environment (CLAUDE_CODE_OAUTH_TOKEN from `claude setup-token`,
# or ANTHROPIC_API_KEY, which renders the project with auth_method=api_key) the request goes to
# the real Claude and spends a few tokens; without one it goes to the fake Anthropic API bundled
# with the provider, and the output says which. Without `make`, the same steps run directly.
#
# LCC_QUICKSTART_VENV=PATH  use this ready virtualenv (Copier and the gateway's packages installed)
#                           for Copier and as the project's virtualenv: no install at all.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf '\n== quickstart: %s\n' "$*"; }
die() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }

dest="${1:-}"
if [[ -z "$dest" ]]; then
  dest="$(mktemp -d "${TMPDIR:-/tmp}/quickstart.XXXXXX")/claude-code-gateway"
fi
if [[ -e "$dest" ]] && [[ -n "$(ls -A "$dest" 2>/dev/null)" ]]; then
  die "$dest exists and is not empty: name a new directory"
fi
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
  || die "python3 3.11 or newer is required (found: $(python3 -V 2>&1 || echo none))"

# ---------------------------------------------------------------- 1. Copier
if [[ -n "${LCC_QUICKSTART_VENV:-}" ]]; then
  venv="$(cd "$LCC_QUICKSTART_VENV" && pwd)"
  [[ -x "$venv/bin/copier" ]] || die "LCC_QUICKSTART_VENV=$venv has no bin/copier"
  copier="$venv/bin/copier"
else
  venv=""
  tools="${XDG_CACHE_HOME:-$HOME/.cache}/litellm-claude-code/quickstart-venv"
  if [[ ! -x "$tools/bin/copier" ]]; then
    say "a virtualenv with Copier in $tools"
    python3 -m venv "$tools" \
      || die "python3 -m venv failed: install the venv module (Debian/Ubuntu: apt-get install python3-venv)"
    "$tools/bin/pip" install --quiet --disable-pip-version-check "copier>=9.4,<10"
  fi
  copier="$tools/bin/copier"
fi

# ---------------------------------------------------------------- 2. render
answers=()
if [[ -z "${CLAUDE_CODE_OAUTH_TOKEN:-}" && -n "${ANTHROPIC_API_KEY:-}" ]]; then
  answers+=(-d auth_method=api_key)   # the project then reads ANTHROPIC_API_KEY
fi
source_dir="$here"
ref=()
if command -v git >/dev/null && git -C "$here" rev-parse --show-toplevel >/dev/null 2>&1 \
   && [[ "$(git -C "$here" rev-parse --show-toplevel)" == "$here" ]]; then
  ref=(--vcs-ref HEAD)   # this checkout as it is (uncommitted changes included), not its latest tag
elif [[ -d "$here/.git" ]]; then
  # A git checkout without git: Copier would need git to read it, so render from a plain copy.
  source_dir="$(mktemp -d "${TMPDIR:-/tmp}/quickstart-template.XXXXXX")"
  trap 'rm -rf "$source_dir"' EXIT
  cp -R "$here/copier.yml" "$here/template" "$here/provider" "$here/roles" "$source_dir/"
fi
say "rendering the template with its defaults into $dest"
"$copier" copy --defaults --quiet "${ref[@]}" "${answers[@]}" "$source_dir" "$dest"

# ---------------------------------------------------------------- 3. the generated project
cd "$dest"
if command -v make >/dev/null; then
  if [[ -n "$venv" ]]; then
    say "make venv secrets smoke (VENV=$venv: already installed)"
    make VENV="$venv" -o "$venv/.installed" venv secrets smoke
  else
    say "make venv secrets smoke (the first install takes a few minutes)"
    make venv secrets smoke
  fi
else
  say "make is not installed: running the steps of 'make venv smoke' directly"
  if [[ -z "$venv" ]]; then
    venv="$dest/.venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    # As `make venv`: the hashed lock, the provider without dependencies, the dev tools
    # constrained by the lock's versions (hash lines dropped: hashes would apply to them too).
    "$venv/bin/pip" install --quiet --require-hashes -r requirements.lock
    "$venv/bin/pip" install --quiet --no-deps ./provider
    sed -e '/--hash=/d' -e 's/ *\\$//' requirements.lock > "$venv/lock-constraints.txt"
    "$venv/bin/pip" install --quiet -c "$venv/lock-constraints.txt" -r requirements-dev.txt
  fi
  "$venv/bin/python" scripts/smoke.py
fi

# ---------------------------------------------------------------- 4. a key and the clients
# A person's key (what `make key NAME=quickstart` issues), and docs/clients.md's Claude Code and
# Codex lines with this project's URL (scripts/client_lines.py), for when `make run` serves.
python="${venv:-$dest/.venv}/bin/python"
key="$("$python" -m litellm_claude_code.keys add --store keys/keys.json --name quickstart)" \
  || die "could not issue a key with $python -m litellm_claude_code.keys"

say "done: the gateway project is in $dest"
cat <<EOF
   cd $dest
   make run      # the proxy on http://127.0.0.1:4000 (put your Claude token in secrets.env first)
   make test     # its fast checks; 'make test-docker' runs its container end-to-end tests
EOF
say "your key (make key NAME=quickstart; shown only this once) and your clients, once make run serves"
python3 "$here/scripts/client_lines.py" "$dest" "$key"

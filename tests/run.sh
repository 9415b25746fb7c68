#!/usr/bin/env bash
# The whole suite, as CI runs it (.ci/run): the fleet suite (`-m fleet`: systemd hosts provisioned
# by Ansible, about half of the wall time, most of it waiting on containers and playbooks) runs in
# a second pytest process beside everything else, so the two share the machine's cores. `pytest`
# alone runs the same tests one after the other. Extra arguments go to both pytest processes.
# Each process has its own temporary directory; the fleet's output follows the rest's. Each prints
# its slowest tests (`--durations`), so where CI's time goes is in every run's log.
set -uo pipefail
cd "$(dirname "$0")/.."
pytest_bin="${PYTEST:-.venv/bin/pytest}"
fleet_tmp=$(mktemp -d)
rest_tmp=$(mktemp -d)
fleet_log="$fleet_tmp/fleet.log"
"$pytest_bin" -q -m fleet --durations=15 --basetemp "$fleet_tmp/t" "$@" >"$fleet_log" 2>&1 &
fleet_pid=$!
"$pytest_bin" -q -m "not fleet" --durations=40 --basetemp "$rest_tmp/t" "$@"
rest_status=$?
wait "$fleet_pid"
fleet_status=$?
echo "== the fleet suite (pytest -m fleet), run beside the rest"
cat "$fleet_log"
rm -rf "$fleet_tmp" "$rest_tmp"
echo "== pytest exit: fleet $fleet_status, the rest $rest_status"
if ((rest_status != 0)); then exit "$rest_status"; fi
exit "$fleet_status"

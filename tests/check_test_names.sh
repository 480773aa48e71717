#!/usr/bin/env bash
# tests/check_test_names.sh TEST_BINARY...: every Catch2 test name must survive CTest's discovery as
# one entry. CMake splits a list at ';' and treats '[' ']' as bracket quoting, so a name holding any of
# them turns into entries that run some other test or none at all (and '\' escapes the next character
# in a Catch2 test spec). Each entry also runs with `-w NoTests`, so one that matches nothing fails.
set -uo pipefail
bad=0
for bin in "$@"; do
  # Catch2 v2 exits with the number of tests it lists: only the output tells.
  names="$("$bin" --list-test-names-only)"
  [[ -n "$names" ]] || { echo "$bin holds no tests" >&2; bad=1; continue; }
  while IFS= read -r name; do
    if [[ "$name" == *[\;\[\]\\]* || "$name" != "${name#[ ~*-]}" ]]; then
      echo "$(basename "$bin"): test name \"$name\" holds ';', '[', ']' or '\\' or starts with ' ', '~', '*' or '-':" \
           "CTest's discovery would split or misread it; rename it" >&2
      bad=1
    fi
  done <<< "$names"
done
[[ $bad -eq 0 ]] && echo "all test names of $# binaries are discoverable"
exit $bad

# Sourced by the test scripts of tests/: a fresh temporary folder $T removed on exit, the repository
# root $ROOT, the bundled ISBI sample $DATA, and the two ways a script reports.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$ROOT/tests/data/isbi"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAILED: $*" >&2; exit 1; }
expect_error() {  # expect_error "message part" command...: the command must fail, saying the part
  local want="$1"; shift
  if out=$("$@" 2>&1); then fail "expected an error from: $*"; fi
  grep -qF -- "$want" <<<"$out" || fail "error of '$*' lacks '$want': $out"
}

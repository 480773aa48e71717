#!/usr/bin/env bash
# Installs the Debian packages the build needs, when any is missing. Used by tools/test.sh,
# tools/demo.sh and .ci/run. nvcc and the CUDA libraries come with the CUDA toolkit, not from here.
set -euo pipefail
# clang, its sanitizer/libFuzzer runtimes and its OpenMP: the sanitizer and fuzzing stage of tools/test.sh.
# pkg-config: the test that builds examples/ against the installed libunet. clang-format: tools/check_format.sh.
pkgs=(cmake g++ make catch2 libbenchmark-dev libstb-dev nlohmann-json3-dev libtiff-dev python3 pkg-config
      clang libclang-rt-14-dev libomp-dev clang-format)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

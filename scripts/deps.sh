#!/usr/bin/env bash
# Installs the Debian packages pmalloc needs to build, test and benchmark, skipping those
# already present. Usage: scripts/deps.sh [build|test|bench|all]   (default: all)
set -euo pipefail
need=(cmake ninja-build g++ pkg-config libgtest-dev libgmock-dev publicsuffix)
case "${1:-all}" in
  build) ;;
  test) need+=(clang-14 libclang-rt-14-dev libsodium-dev doxygen) ;;
  bench) need+=(libbenchmark-dev libsodium-dev gnuplot-nox) ;;
  all) need+=(clang-14 libclang-rt-14-dev libbenchmark-dev libsodium-dev gnuplot-nox doxygen) ;;
  *) echo "usage: $0 [build|test|bench|all]" >&2; exit 2 ;;
esac
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps.sh: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

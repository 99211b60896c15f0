#!/usr/bin/env bash
# Quick start, command 1: install what is missing, build, and run the demonstrations
# (pmalloc-demo: the pool life cycle; pmalloc-psl: the Public Suffix List in a sealed pool).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target pmalloc-demo pmalloc-psl
./build/examples/pmalloc-demo
echo
# The real-data demonstration: the Public Suffix List (Debian package publicsuffix, which
# deps.sh installs) in a protected, sealed pool; --prove shows the stray write and the seal.
./build/examples/psl/pmalloc-psl --prove --explain www.example.co.uk city.kobe.jp a.b.c.kobe.jp \
  食狮.公司.cn xn--85x722f.xn--55qx5d.cn octocat.github.io co.uk example.com.

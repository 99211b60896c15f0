#!/usr/bin/env bash
# Quick start, command 1: install what is missing, build, and run the demonstration.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target pmalloc-demo
./build/examples/pmalloc-demo

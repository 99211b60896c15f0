#!/usr/bin/env bash
# Builds and runs the external consumer projects (see CMakeLists.txt in this folder).
# Usage: run.sh install    <pmalloc build dir>  <this dir> <generator> <cc> <c++> <version> "<extra flags>"
#        run.sh subproject <pmalloc source dir> <this dir> <generator> <cc> <c++> <version> "<extra flags>"
# Everything happens in a fresh temporary directory, removed afterwards.
set -euo pipefail
mode=$1 tree=$2 here=$3 generator=$4 cc=$5 cxx=$6 version=$7 flags=${8:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/pmalloc-consumers.XXXXXX")
trap 'rm -rf "$work"' EXIT
jobs=2
step() { echo "--- $(date +%s.%N | cut -c1-14) $*"; }

configure_and_build() {  # source dir, build dir, extra cmake args...
  local src=$1 bin=$2
  shift 2
  cmake -S "$src" -B "$bin" -G "$generator" -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags" "$@" >"$bin.configure.log" 2>&1 || { cat "$bin.configure.log"; return 1; }
  cmake --build "$bin" -j "$jobs" >"$bin.build.log" 2>&1 || { cat "$bin.build.log"; return 1; }
}

needs_libpmalloc_so() { readelf -d "$1" | grep -q 'NEEDED.*libpmalloc\.so'; }

if [ "$mode" = install ]; then
  prefix=$work/prefix
  # The library's two components (programs of examples and demos are not needed here).
  for component in pmalloc_runtime pmalloc_development; do
    step "cmake --install $tree --prefix $prefix --component $component"
    cmake --install "$tree" --prefix "$prefix" --component $component >"$work/install.log" 2>&1 ||
      { cat "$work/install.log"; exit 1; }
  done
  for f in include/pmalloc/pmalloc.h include/pmalloc/pmalloc.hpp include/pmalloc/memory_resource.hpp \
           include/pmalloc/allocator.hpp include/pmalloc/stats.h lib/libpmalloc.a lib/libpmalloc.so \
           lib/cmake/pmalloc/pmalloc-config.cmake lib/cmake/pmalloc/pmalloc-config-version.cmake \
           lib/pkgconfig/pmalloc.pc; do
    [ -e "$prefix/$f" ] || { echo "not installed: $f"; exit 1; }
  done

  step "C++ consumer: find_package(pmalloc $version CONFIG REQUIRED)"
  configure_and_build "$here/cxx" "$work/cxx" -DCMAKE_PREFIX_PATH="$prefix" -DPMALLOC_EXPECTED_VERSION="$version"
  needs_libpmalloc_so "$work/cxx/consumer_default" || { echo "pmalloc::pmalloc did not link the shared library"; exit 1; }
  needs_libpmalloc_so "$work/cxx/consumer_shared" || { echo "pmalloc::pmalloc_shared is not shared"; exit 1; }
  if needs_libpmalloc_so "$work/cxx/consumer_static"; then echo "pmalloc::pmalloc_static is not static"; exit 1; fi
  for exe in consumer_default consumer_shared consumer_static; do "$work/cxx/$exe"; done

  step "C++ consumer: PMALLOC_USE_STATIC_LIBS=ON"
  configure_and_build "$here/cxx" "$work/cxx-static" -DCMAKE_PREFIX_PATH="$prefix" -DPMALLOC_USE_STATIC_LIBS=ON \
    -DPMALLOC_CONSUMER_DEFAULT_ONLY=ON
  if needs_libpmalloc_so "$work/cxx-static/consumer_default"; then echo "PMALLOC_USE_STATIC_LIBS ignored"; exit 1; fi
  "$work/cxx-static/consumer_default"

  step "C consumer: pkg-config"
  export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
  [ "$(pkg-config --modversion pmalloc)" = "$version" ] || { echo "pkg-config version mismatch"; exit 1; }
  libdir=$(pkg-config --variable=libdir pmalloc)
  # shellcheck disable=SC2046,SC2086
  "$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror $flags $(pkg-config --cflags pmalloc) "$here/c/main.c" \
    -o "$work/c_shared" $(pkg-config --libs pmalloc) -Wl,-rpath,"$libdir"
  needs_libpmalloc_so "$work/c_shared" || { echo "pkg-config --libs did not link the shared library"; exit 1; }
  "$work/c_shared"
  static_libs=$(pkg-config --static --libs pmalloc | sed 's/-lpmalloc/-l:libpmalloc.a/')
  # shellcheck disable=SC2086
  "$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror $flags $(pkg-config --cflags pmalloc) "$here/c/main.c" \
    -o "$work/c_static" $static_libs
  if needs_libpmalloc_so "$work/c_static"; then echo "static pkg-config link is not static"; exit 1; fi
  "$work/c_static"
elif [ "$mode" = subproject ]; then
  step "C++ consumer: FetchContent(SOURCE_DIR $tree)"
  # No build type (no optimisation, no debug info): this test recompiles the whole library,
  # keep it quick. pmalloc must leave the parent's (empty) build type alone.
  configure_and_build "$here/subproject" "$work/sub" -DPMALLOC_SOURCE_DIR="$tree" -DPMALLOC_CONSUMER_DIR="$here/cxx" \
    -DCMAKE_BUILD_TYPE=
  "$work/sub/consumer_subproject"
else
  echo "usage: $0 install|subproject ..." >&2
  exit 2
fi
echo "consumers ($mode): all built and ran"

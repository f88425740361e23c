#!/usr/bin/env bash
# Builds programs against an installed swiotlb, as a user of the library
# would, from a temporary prefix:
#  1. static (the Release tree, reused): every examples/c/*.c with
#     `cc -std=c11 -Wall -Werror x.c $(pkg-config --cflags --libs --static swiotlb)`
#     and examples/bounce_packet.cc through find_package(swiotlb CONFIG)
#     (examples/cmake-consumer); each must run and exit 0;
#  2. shared (a second tree that builds only the library, trace layer
#     included, with -DBUILD_SHARED_LIBS=ON): the same programs, plus checks that
#     libswiotlb.so has a soname, exports only the API, and exports all of
#     it (scripts/check-exports.py: every function the public headers
#     declare and do not define);
#  and checks that no installed header a user must include needs fmt or
#  nlohmann-json (only the opt-in *_json.h headers may), and that every
#  installed header compiles on its own.
#
# Usage: scripts/test-install.sh [RELEASE_BUILD_DIR]   (default build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
release=${1:-build/release}
jobs=$(nproc)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

say() { echo "=== test-install: $*"; }

# ---- 1. static, from the Release tree -----------------------------------------
if [ ! -f "$release/CMakeCache.txt" ]; then
  cmake -S . -B "$release" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
# Everything (the library target shares its name with the command's file).
cmake --build "$release" -j "$jobs"
cmake --install "$release" --prefix "$work/static" >/dev/null

# Headers: no installed header includes fmt, and nothing the entry headers
# pull in includes nlohmann-json. The opt-in *_json.h headers (such as
# iotlb/io_tlb_json.h) and the command-side reports may include nlohmann.
say "installed headers include no fmt; entry headers pull in no nlohmann"
leaks=$(grep -rlE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]fmt/' "$work/static/include" || true)
{
  echo '#include <swiotlb.h>'
  echo '#include <swiotlb/swiotlb.h>'
  echo '#include <swiotlb/iova.h>'
  if [ -e "$work/static/include/swiotlb/trace.h" ]; then echo '#include <swiotlb/trace.h>'; fi
} >"$work/entry.cc"
leaks+=$(c++ -std=c++20 -I"$work/static/include" -M "$work/entry.cc" | tr ' ' '\n' |
  grep -E '/(fmt|nlohmann)/' || true)
if [ -n "$leaks" ]; then
  echo "public headers that include fmt or nlohmann:" >&2
  echo "$leaks" >&2
  exit 1
fi
if [ -e "$work/static/include/swiotlb/core/error_format.h" ]; then
  echo "the internal header core/error_format.h was installed" >&2
  exit 1
fi

# Every installed header compiles alone, as a user's first include: none
# leans on another header having been included before it.
say "every installed header compiles on its own"
(cd "$work/static/include" && find swiotlb -name '*.h' | sort) >"$work/headers"
while read -r header; do
  printf '#include <%s>\n' "$header" >"$work/alone.cc"
  if ! c++ -std=c++20 -fsyntax-only -I"$work/static/include" "$work/alone.cc"; then
    echo "installed header $header does not compile on its own" >&2
    exit 1
  fi
done <"$work/headers"
printf '#include <swiotlb.h>\n' >"$work/alone.c"
cc -std=c11 -Wall -Werror -fsyntax-only -I"$work/static/include" "$work/alone.c"
echo "  $(wc -l <"$work/headers") C++ headers and the C header"

# build_c_examples PREFIX PKG_CONFIG_FLAGS...: every C example, built and run.
# Linked statically, swiotlb.pc needs the .pc files of the packages behind
# it (found on the system's path too); linked shared, it must need none, so
# pkg-config is given the prefix's directory alone.
build_c_examples() {
  local prefix=$1
  shift
  local flags search=PKG_CONFIG_LIBDIR
  if [ "${1:-}" = "--static" ]; then
    search=PKG_CONFIG_PATH
  fi
  flags=$(env "$search=$prefix/lib/pkgconfig" pkg-config --cflags --libs "$@" swiotlb)
  for source in examples/c/*.c; do
    local name
    name=$(basename "$source" .c)
    # shellcheck disable=SC2086
    cc -std=c11 -Wall -Werror "$source" $flags -o "$work/$name"
    LD_LIBRARY_PATH="$prefix/lib" "$work/$name" >/dev/null
    echo "  $name: built and ran"
  done
}

# build_cxx_consumer PREFIX: examples/cmake-consumer with find_package, as
# on a machine without nlohmann-json (it includes no *_json.h header, so
# find_package(swiotlb) must not need it).
build_cxx_consumer() {
  local prefix=$1 dir
  dir=$work/consumer-$(basename "$1")
  cmake -S examples/cmake-consumer -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON >/dev/null
  cmake --build "$dir" >/dev/null
  LD_LIBRARY_PATH="$prefix/lib" "$dir/bounce_packet" >/dev/null
  echo "  bounce_packet (find_package): built and ran"
}

say "static library: C examples with pkg-config --static"
build_c_examples "$work/static" --static
say "static library: C++ consumer with find_package"
build_cxx_consumer "$work/static"
# The opt-in JSON headers: where nlohmann-json is installed, find_package
# hands it on with the target, and IoTlb's JSON links and runs.
say "static library: a consumer of io_tlb_json.h with find_package"
mkdir -p "$work/json-consumer"
cat >"$work/json-consumer/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(json_consumer LANGUAGES CXX)
find_package(swiotlb CONFIG REQUIRED)
get_target_property(links swiotlb::swiotlb INTERFACE_LINK_LIBRARIES)
if(NOT "nlohmann_json::nlohmann_json" IN_LIST links)
  message(FATAL_ERROR "swiotlb::swiotlb does not carry nlohmann-json: ${links}")
endif()
add_executable(json_consumer json_consumer.cc)
target_link_libraries(json_consumer PRIVATE swiotlb::swiotlb)
CMAKE
cat >"$work/json-consumer/json_consumer.cc" <<'CXX'
#include <swiotlb/iotlb/io_tlb_json.h>
#include <swiotlb/swiotlb.h>

int main() {
  auto options = swiotlb::IoTlbOptions::from_config(swiotlb::default_swiotlb_config(1));
  if (!options) return 1;
  auto tlb = swiotlb::IoTlb::create(*options);
  if (!tlb) return 2;
  return swiotlb::io_tlb_json(**tlb).is_object() ? 0 : 3;
}
CXX
cmake -S "$work/json-consumer" -B "$work/json-consumer/build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/static" >/dev/null
cmake --build "$work/json-consumer/build" >/dev/null
"$work/json-consumer/build/json_consumer"
echo "  json_consumer (find_package, nlohmann-json found): built and ran"
"$work/static/bin/swiotlb" --version

# ---- 2. shared: the library alone ---------------------------------------------
shared=${release}-shared
say "shared library build"
# The Release tree's compiler launcher (ccache), if it has one.
mapfile -t launchers < <(grep -oE '^CMAKE_(CXX|C)_COMPILER_LAUNCHER:[A-Z]+=.+' \
  "$release/CMakeCache.txt" | sed -E 's/^([A-Z_]+):[A-Z]+=(.*)$/-D\1=\2/')
# With the sim layer, so that <swiotlb/trace.h> is installed and checked.
cmake -S . -B "$shared" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
  -DSWIOTLB_BUILD_TESTS=OFF -DSWIOTLB_BUILD_BENCH=OFF -DSWIOTLB_BUILD_EXAMPLES=OFF \
  -DSWIOTLB_BUILD_TOOLS=OFF -DSWIOTLB_BUILD_SIM=ON "${launchers[@]}" >/dev/null
cmake --build "$shared" -j "$jobs" --target swiotlb
cmake --install "$shared" --prefix "$work/shared" >/dev/null
lib=$work/shared/lib/libswiotlb.so

say "libswiotlb.so has a soname and exports only the API"
soname=$(readelf -d "$lib" | sed -nE 's/.*\(SONAME\).*\[(.*)\]/\1/p')
if [ -z "$soname" ]; then
  echo "libswiotlb.so has no soname" >&2
  exit 1
fi
echo "  soname $soname"
nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*$//' | c++filt >"$work/exports"
foreign=$(grep -vE '^(swiotlb_[a-z0-9_]+|swiotlb::.*|(typeinfo|typeinfo name|vtable) for swiotlb::.*|SWIOTLB_0)$' \
  "$work/exports" || true)
if [ -n "$foreign" ]; then
  echo "libswiotlb.so exports symbols outside the API:" >&2
  echo "$foreign" | head -20 >&2
  exit 1
fi
# Every layer exports only what is marked SWIOTLB_API: none of its
# internals (the pool table, the wait queue, the slot policies, the region
# plumbing, the C API's handles).
internal=$(grep -E '^((typeinfo|typeinfo name|vtable) for )?swiotlb::(FastPolicy|LinuxPolicy|Linux61Policy|SegmentSet|RegionBacking|RegionMapping|UniqueFd|PoolTable|WaitQueue|IoPool|IoTlb::Worker|iova::IovaLiveSet|iova::IovaRcache|capi::)' \
  "$work/exports" || true)
if [ -n "$internal" ]; then
  echo "libswiotlb.so exports internals:" >&2
  echo "$internal" | head -20 >&2
  exit 1
fi
for wanted in swiotlb_map_single swiotlb_tlb_create 'swiotlb::Device::create' \
  'swiotlb::map_single' 'swiotlb::IoTlb::create' 'swiotlb::iova::IovaDomain::create'; do
  if ! grep -q "^$wanted" "$work/exports"; then
    echo "libswiotlb.so does not export $wanted" >&2
    exit 1
  fi
done
echo "  $(wc -l <"$work/exports") symbols, all API"

# Nothing a public header declares is left out: a function the entry headers
# name but the library hides links against the static library and fails
# against this one.
say "libswiotlb.so exports every out-of-line function of the public headers"
python3 scripts/check-exports.py "$work/shared/include" "$lib"
# And the check can fail: a declaration planted in a public header, which
# the library cannot have, must be named.
cp -r "$work/shared/include" "$work/planted"
echo 'namespace swiotlb { SWIOTLB_API int planted_for_the_check(); }' \
  >>"$work/planted/swiotlb/dma/dma_api.h"
if python3 scripts/check-exports.py "$work/planted" "$lib" 2>"$work/planted.err" ||
  ! grep -q 'planted_for_the_check' "$work/planted.err"; then
  echo "check-exports.py did not name a function the library lacks" >&2
  exit 1
fi
echo "  (and names a function planted in dma_api.h)"

say "shared library: C examples with pkg-config"
build_c_examples "$work/shared"
say "shared library: C++ consumer with find_package"
build_cxx_consumer "$work/shared"
say "all consumers built and ran"

# Shared by scripts/test and scripts/demo: install what is missing, build, run a throwaway PostgreSQL.
# Sourced, not run.

SWITCHBOARD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Every package the build, the tests and the demo need, all from Debian 12.
SWITCHBOARD_PACKAGES=(g++ cmake ninja-build pkg-config libboost1.81-dev libssl-dev libpqxx-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev
  libpugixml-dev libcli11-dev prometheus-cpp-dev postgresql-15 clang libclang-rt-14-dev curl procps)

# clang++, not g++ 12: see the top of CMakeLists.txt (g++ 12 miscompiles coroutine temporaries).
export CXX=${CXX:-clang++}

log_step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Installs only what is missing; quick (one dpkg-query) when everything is present.
ensure_packages() {
  local missing=() pkg
  for pkg in "${SWITCHBOARD_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${missing[*]} (run as root, or install them with apt-get)" >&2
    return 1
  fi
  log_step "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends --no-upgrade -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
}

# configure_and_build BUILD_DIR CMAKE_ARGS... : Ninja build of every target.
configure_and_build() {
  local dir=$1; shift
  # A build directory configured with another compiler (g++ before the switch) starts afresh.
  if [ -f "$dir/CMakeCache.txt" ] && ! grep -q "CMAKE_CXX_COMPILER:[A-Z]*=.*$(basename "$CXX")\$" "$dir/CMakeCache.txt"; then
    rm -rf "$dir"
  fi
  cmake -S "$SWITCHBOARD_ROOT" -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" --parallel "$(nproc)"
}

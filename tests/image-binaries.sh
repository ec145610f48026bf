#!/usr/bin/env bash
# The Dockerfile's build stage without a container engine: its musl toolchain (the Debian
# package and Rust target it installs) and its cargo command, both read from the Dockerfile,
# then checks that the binaries it copies into the distroless image are static and run there
# (no libc, no shell, not root). Ends with one PASS line, SKIP with the reason when the Rust
# target cannot be downloaded here, or FAIL.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "FAIL  Dockerfile build stage: $*" >&2
  exit 1
}

target=$(sed -n 's/^ARG TARGET=//p' Dockerfile)
musl_tools=$(grep -o 'musl-tools=[^ ]*' Dockerfile) || fail "no pinned musl-tools in the Dockerfile"
build=$(sed -n 's/^ *\(cargo build .*\) \\$/\1/p' Dockerfile)
binaries=$(sed -n 's|^COPY --from=build \(.*\) /usr/local/bin/$|\1|p' Dockerfile)
[[ -n $target && -n $build && -n $binaries ]] || fail "cannot read ARG TARGET, the cargo build line or the COPY of the binaries"

if ! command -v musl-gcc >/dev/null; then
  ((EUID == 0)) || fail "musl-gcc missing; run as root or apt-get install $musl_tools"
  echo "installing $musl_tools with apt-get"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$musl_tools" >/dev/null
fi
if ! rustup target list --installed | grep -qx "$target"; then
  if ! rustup_out=$(rustup target add "$target" 2>&1); then
    echo "SKIP  Dockerfile build stage: the Rust target $target cannot be installed here: $rustup_out"
    exit 0
  fi
fi

start=$SECONDS
echo "+ $build (TARGET=$target)"
TARGET=$target eval "$build"
for binary in $binaries; do
  file=target/$target/release/$(basename "$binary")
  [[ -x $file ]] || fail "$file was not built"
  if readelf -l "$file" | grep -q 'program interpreter'; then
    fail "$file needs a dynamic loader; the distroless static image has none"
  fi
  # As in the image: an empty environment, no shell, the image's non-root user.
  version=$(setpriv --reuid=65532 --regid=65532 --clear-groups env -i "$file" --version) ||
    fail "$file --version failed as uid 65532"
  echo "      $file: static, runs as uid 65532: $version"
done
echo "PASS  Dockerfile build stage ($((SECONDS - start))s)"

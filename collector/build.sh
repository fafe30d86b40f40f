#!/usr/bin/env bash
# Build the otelcol-otelkit collector distribution from collector/manifest.yaml
# with the OpenTelemetry Collector Builder (ocb), and cache the binary outside
# the repo. Usage:  bin=$(collector/build.sh)
#
# stdout: ONLY the absolute path of the binary. Progress goes to stderr.
# Cache:  ${OTELKIT_CACHE_DIR:-$HOME/.cache/otelkit}/collector/<key>/otelcol-otelkit
#         <key> = sha256 of manifest.yaml + OCB_VERSION; a cache hit is instant.
# Needs:  go >= 1.26 on PATH, and the Go module proxy (first build only).
# A first build takes several minutes on 2 cores (hundreds of modules).
set -euo pipefail

# Must match the release every module in manifest.yaml is pinned to.
OCB_VERSION=v0.161.0
DIST_NAME=otelcol-otelkit

log() { printf 'collector/build.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
manifest="$here/manifest.yaml"
[[ -f $manifest ]] || die "manifest not found: $manifest"

cache_root="${OTELKIT_CACHE_DIR:-$HOME/.cache/otelkit}"
key=$( { cat "$manifest"; printf '\nocb=%s\n' "$OCB_VERSION"; } | sha256sum | cut -d' ' -f1)
out_dir="$cache_root/collector/$key"
bin="$out_dir/$DIST_NAME"

if [[ -x $bin ]]; then
  log "cached: $bin"
  printf '%s\n' "$bin"
  exit 0
fi

command -v go >/dev/null 2>&1 \
  || die "'go' not found on PATH; install Go >= 1.26 to build the collector"

# Use the machine's Go only: never let the go command fetch another toolchain.
# (If the manifest ever needs Go 1.27, set GOTOOLCHAIN=go1.27.3 here instead
# and say so in collector/README.md.)
export GOTOOLCHAIN=local
# ocb itself passes -trimpath and -ldflags="-s -w" to `go build`; keep the
# environment's GOFLAGS from adding anything surprising (e.g. -mod=vendor).
export GOFLAGS="-trimpath -buildvcs=false"

gover=$(go env GOVERSION)   # e.g. go1.26.8
if [[ ! $gover =~ ^go1\.([0-9]+) ]] || (( BASH_REMATCH[1] < 26 )); then
  die "Go >= 1.26 is required by the collector builder $OCB_VERSION (found $gover)"
fi

mkdir -p "$out_dir"
# Serialise concurrent builds of the same key (e.g. parallel test workers).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$out_dir/.lock"
  flock 9
  if [[ -x $bin ]]; then   # another process finished it while we waited
    log "cached: $bin"
    printf '%s\n' "$bin"
    exit 0
  fi
fi

start=$SECONDS

# 1. The builder, installed once per version into the cache.
ocb_dir="$cache_root/tools/ocb-$OCB_VERSION"
ocb="$ocb_dir/builder"
if [[ ! -x $ocb ]]; then
  log "installing go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION into $ocb_dir"
  GOBIN="$ocb_dir" go install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION" >&2
fi

# 2. Generate + compile in a temp dir outside the repo.
build_dir=$(mktemp -d "${TMPDIR:-/tmp}/$DIST_NAME-build.XXXXXX")
trap 'rm -rf "$build_dir"' EXIT
# Pass the output path through a copy of the manifest (ocb's --output-path
# flag is deprecated).
sed "s|^dist:[[:space:]]*$|dist:\n  output_path: $build_dir/src|" "$manifest" >"$build_dir/manifest.yaml"
grep -q "output_path: $build_dir/src" "$build_dir/manifest.yaml" \
  || die "could not set dist.output_path (manifest must have a top-level 'dist:' line)"

log "building $DIST_NAME with $gover in $build_dir (this takes several minutes)"
# TMPDIR inside build_dir: ocb always makes an (unused) default output dir in
# TMPDIR, and go build keeps its work files there; both are removed with it.
mkdir -p "$build_dir/tmp"
TMPDIR="$build_dir/tmp" "$ocb" --config "$build_dir/manifest.yaml" >&2 \
  || die "ocb build failed (see output above)"

[[ -x $build_dir/src/$DIST_NAME ]] || die "ocb finished but produced no $DIST_NAME binary"
# Atomic publish into the cache.
cp "$build_dir/src/$DIST_NAME" "$bin.tmp.$$"
mv -f "$bin.tmp.$$" "$bin"

log "built in $((SECONDS - start))s: $bin"
printf '%s\n' "$bin"

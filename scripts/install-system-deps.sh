#!/usr/bin/env bash
# Installs the Debian packages `npm test` needs on a fresh Debian 12 machine (run as root).
# The README's set-up and CI (.ci/run) both run this one script, so they cannot drift apart.
#   tar, git, ca-certificates, procps   basics the tests and npm call
#   buildah, skopeo, uidmap             real image builds, pushes and pulls
#   docker-registry                     the baseline OCI registry (registry benchmarks and client tests)
#   openssl                             throw-away CAs for the registry TLS tests (runner/test/helpers/tls-ca.ts)
#   busybox-static, debootstrap         base images made locally, without Docker Hub
#   chromium                            the status page tests drive a real browser
#   qemu-user-static, binfmt-support    linux/arm64 RUN steps under emulation (multi-platform tests, docs/platforms.md);
#                                       the arm64 package list is added so tests can `apt-get download busybox-static:arm64`
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(tar git ca-certificates procps buildah skopeo uidmap docker-registry openssl busybox-static debootstrap chromium qemu-user-static binfmt-support)
added_arch=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  added_arch=1
fi
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ] || [ "$added_arch" = 1 ]; then
  apt-get update -qq
  [ ${#missing[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# QEMU's handlers live in binfmt_misc: mount it if the kernel has not, then register and enable them.
if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || echo "warning: cannot mount binfmt_misc; arm64 builds under emulation will fail" >&2
fi
update-binfmts --enable >/dev/null 2>&1 || true

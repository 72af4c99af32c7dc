#!/usr/bin/env bash
# Installs the Debian packages `npm test` needs on a fresh Debian 12 machine (run as root).
# The README's set-up and CI (.ci/run) both run this one script, so they cannot drift apart.
#   tar, git, ca-certificates, procps   basics the tests and npm call
#   buildah, skopeo, uidmap             real image builds, pushes and pulls
#   docker-registry                     the baseline OCI registry (registry benchmarks and client tests)
#   openssl                             throw-away CAs for the registry TLS tests (runner/test/helpers/tls-ca.ts)
#   busybox-static, debootstrap         base images made locally, without Docker Hub
#   chromium                            the status page tests drive a real browser
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(tar git ca-certificates procps buildah skopeo uidmap docker-registry openssl busybox-static debootstrap chromium)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

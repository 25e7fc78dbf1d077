#!/usr/bin/env bash
# A release: every artifact, built here and written into one directory; with --registry, the
# image and the chart pushed; with a signing option, the image signed with cosign.
#
#   bash image/release.sh [--out DIR] [--from DIR ...]
#                         [--registry HOST[:PORT][/PATH]] [--plain-http]
#                         [--sign-key FILE | --sign-keyless]
#
# Writes into DIR (default dist/), for version V (the chart's appVersion, which must equal the
# Cargo workspace version) and each platform ARCH built:
#   workos-convex-auth-V.oci.tar                 the image, an OCI archive: one index over every
#                                                platform (the Dockerfile's final stage, image/oci.py)
#   platforms/workos-convex-auth-V-linux-ARCH.oci.tar    the same image for one platform
#   workos-convex-auth-linux-ARCH.tar.gz         the binary alone: the kubectl plugin archive krew
#                                                installs (plugins/krew/wca.yaml)
#   workos-convex-auth-V-linux-ARCH.cdx.json     CycloneDX SBOM of that binary (cargo-cyclonedx):
#                                                every crate linked into it, with its version
#   workos-convex-auth-V.tgz                     the packaged Helm chart (appVersion V)
#   workos-convex.io_workosconvexauths.yaml      the CRD on its own (crds.install=false)
#   SHA256SUMS                                   over all of the above
# Without --from it builds this machine's platform natively (image/build-binary.sh); with
# --from DIR (repeatable) it takes the platform files from release directories built earlier
# on other machines (the release workflow builds amd64 and arm64 on their own runners).
#
# --registry pushes the image as REGISTRY/workos-convex-auth:V (skopeo; an index over the
# platforms) and the chart as oci://REGISTRY/charts/workos-convex-auth (helm push), then prints
# both with their digests. Credentials: REGISTRY_USERNAME and REGISTRY_PASSWORD when set (the
# script logs in with them, in a throw-away config), else the logins skopeo, helm and cosign
# already have. TLS: the system's roots, or SSL_CERT_FILE for a private CA. --plain-http talks
# plain HTTP to the registry (a local one only).
# --sign-key FILE signs the pushed image with cosign and that key (COSIGN_PASSWORD, if the key
# has one); --sign-keyless signs with the workflow's OIDC identity (Fulcio + Rekor). Without
# either it signs nothing and says so.
#
# Idempotent: the same commit gives the same bytes (the image archive is reproducible), and a
# second push of the same release changes nothing in the registry.
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist registry="" plain_http=false sign="" sign_key="" from=()
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift ;;
    --from) from+=("$2"); shift ;;
    --registry) registry=${2%/}; shift ;;
    --plain-http) plain_http=true ;;
    --sign-key) sign=key sign_key=$(realpath "$2"); shift ;;
    --sign-keyless) sign=keyless ;;
    *) echo "usage: release.sh [--out DIR] [--from DIR ...] [--registry HOST[:PORT][/PATH]] [--plain-http] [--sign-key FILE | --sign-keyless]" >&2; exit 2 ;;
  esac
  shift
done
log() { echo "[release] $*" >&2; }
die() { echo "release.sh: $*" >&2; exit 1; }

chart=charts/workos-convex-auth
version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$chart/Chart.yaml")
crate_version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' Cargo.toml)
[ -n "$version" ] || die "$chart/Chart.yaml has no appVersion"
[ "$version" = "$crate_version" ] ||
  die "the chart's appVersion ($version) is not the Cargo workspace version ($crate_version): set both"
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
mkdir -p "$out/platforms"
out=$(realpath "$out")
name=workos-convex-auth
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. The platform files: built here, or taken from earlier release directories.
if [ ${#from[@]} -eq 0 ]; then
  arch=$(uname -m); arch=${arch/x86_64/amd64}; arch=${arch/aarch64/arm64}
  log "building linux/$arch natively"
  bash image/build-binary.sh "$tmp/stage/out"
  python3 image/oci.py --dockerfile Dockerfile --stage build="$tmp/stage" \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --platform "linux/$arch" \
    --tag "$name:$version" --out "$out/platforms/$name-$version-linux-$arch.oci.tar" >/dev/null
  tar -C "$tmp/stage/out" --owner=0 --group=0 --numeric-owner --mtime=@0 --sort=name \
    -cf - "$name" | gzip -n >"$out/$name-linux-$arch.tar.gz"
  # The SBOM of the binary just built: the crates of its platform's dependency graph that are
  # linked in (normal dependencies; no build or dev dependencies).
  cdx=$(bash image/tools.sh cargo-cyclonedx)
  triple=$(uname -m)-unknown-linux-gnu
  "$cdx" cyclonedx --manifest-path operator/Cargo.toml --format json --spec-version 1.5 \
    --target "$triple" --no-build-deps --override-filename "$name-sbom" -q
  # Reproducible: the commit's time for the BOM's timestamp, and a serial number derived from
  # the revision and the platform (cargo-cyclonedx writes the time now and a random one).
  python3 - "operator/$name-sbom.json" "$out/$name-$version-linux-$arch.cdx.json" "$revision" "$arch" \
    "$(git log -1 --format=%cI 2>/dev/null || echo 1970-01-01T00:00:00Z)" <<'PY'
import json, sys, uuid
source, target, revision, arch, when = sys.argv[1:]
bom = json.load(open(source))
bom["serialNumber"] = uuid.uuid5(uuid.NAMESPACE_URL, f"workos-convex-auth/{revision}/linux/{arch}").urn
bom["metadata"]["timestamp"] = when
json.dump(bom, open(target, "w"), indent=2, sort_keys=True)
PY
  # It writes one beside every workspace member's manifest: leave none in the tree.
  find . -maxdepth 3 -name "$name-sbom.json" -not -path './target/*' -delete
else
  for dir in "${from[@]}"; do
    cp "$dir"/platforms/*.oci.tar "$out/platforms/"
    cp "$dir"/"$name"-linux-*.tar.gz "$dir"/*.cdx.json "$out/"
  done
fi
platform_archives=("$out"/platforms/"$name-$version"-linux-*.oci.tar)
[ -e "${platform_archives[0]}" ] || die "no platform image in $out/platforms"

# 2. One image over every platform, and the chart.
python3 image/oci.py index --tag "$name:$version" --out "$out/$name-$version.oci.tar" \
  "${platform_archives[@]}" >/dev/null
helm package "$chart" --destination "$out" >/dev/null
# The CRD on its own, for installs with crds.install=false (the chart's NOTES link to it).
cp crds/workos-convex.io_workosconvexauths.yaml "$out/"
[ -f "$out/$name-$version.tgz" ] || die "helm package wrote no $name-$version.tgz (chart version and appVersion differ?)"
(cd "$out" && find . -maxdepth 2 -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort |
  xargs sha256sum >SHA256SUMS)
log "wrote $out:"
(cd "$out" && sed 's/^/  /' SHA256SUMS) >&2

[ -n "$registry" ] || { log "no --registry: nothing pushed, nothing signed"; exit 0; }

# 3. Push. One auth config for skopeo, helm and cosign when credentials are given.
if [ -n "${REGISTRY_USERNAME:-}" ]; then
  auth=$(printf '%s:%s' "$REGISTRY_USERNAME" "${REGISTRY_PASSWORD:?REGISTRY_PASSWORD is not set}" | base64 -w0)
  host=${registry%%/*}
  printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$host" "$auth" >"$tmp/config.json"
  export DOCKER_CONFIG=$tmp REGISTRY_AUTH_FILE=$tmp/config.json HELM_REGISTRY_CONFIG=$tmp/config.json
fi
image="$registry/$name:$version"
tls=(); helm_tls=(); cosign_tls=()
if $plain_http; then
  tls=(--dest-tls-verify=false); helm_tls=(--plain-http); cosign_tls=(--allow-http-registry)
fi
skopeo copy --quiet --all --preserve-digests "${tls[@]}" --digestfile "$tmp/digest" \
  "oci-archive:$out/$name-$version.oci.tar" "docker://$image"
digest=$(cat "$tmp/digest")
# The chart: helm push stamps the manifest with the time of the push, so a second push of the
# same chart would move the tag; the same chart archive already there is left as it is.
chart_ref="$registry/charts/$name:$version"
chart_layer="sha256:$(sha256sum "$out/$name-$version.tgz" | cut -d' ' -f1)"
inspect_tls=(); $plain_http && inspect_tls=(--tls-verify=false)
if skopeo inspect --raw "${inspect_tls[@]}" "docker://$chart_ref" >"$tmp/chart-manifest" 2>/dev/null &&
  grep -q "\"$chart_layer\"" "$tmp/chart-manifest"; then
  chart_digest="sha256:$(sha256sum "$tmp/chart-manifest" | cut -d' ' -f1)"
  log "the chart $version is in the registry already, unchanged"
else
  helm push "$out/$name-$version.tgz" "oci://$registry/charts" "${helm_tls[@]}" >"$tmp/helm-push" 2>&1 ||
    { cat "$tmp/helm-push" >&2; die "helm push failed"; }
  chart_digest=$(sed -n 's/^Digest: //p' "$tmp/helm-push")
fi
echo "pushed image $image@$digest"
echo "pushed chart oci://$registry/charts/$name:$version@$chart_digest"

# 4. Sign the image by digest (a tag can move; the digest cannot).
case $sign in
  key)
    cosign=$(bash image/tools.sh cosign)
    # Signed with this key already (a second run): a new signature would only be appended.
    COSIGN_PASSWORD=${COSIGN_PASSWORD:-} "$cosign" public-key --key "$sign_key" >"$tmp/cosign.pub" 2>/dev/null
    if "$cosign" verify --key "$tmp/cosign.pub" --insecure-ignore-tlog=true "${cosign_tls[@]}" \
      "$registry/$name@$digest" >/dev/null 2>&1; then
      echo "signed $registry/$name@$digest (key $sign_key; signed before, unchanged)"
      exit 0
    fi
    COSIGN_PASSWORD=${COSIGN_PASSWORD:-} "$cosign" sign --yes --key "$sign_key" --tlog-upload=false \
      "${cosign_tls[@]}" "$registry/$name@$digest" >/dev/null 2>"$tmp/cosign" ||
      { cat "$tmp/cosign" >&2; die "cosign sign failed"; }
    echo "signed $registry/$name@$digest (key $sign_key)" ;;
  keyless)
    cosign=$(command -v cosign || bash image/tools.sh cosign)
    "$cosign" sign --yes "${cosign_tls[@]}" "$registry/$name@$digest" >/dev/null
    echo "signed $registry/$name@$digest (keyless)" ;;
  *) echo "not signed: pass --sign-key FILE or --sign-keyless to sign the image" ;;
esac

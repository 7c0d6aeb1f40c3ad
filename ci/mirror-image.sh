#!/bin/sh
# Copy a container image into ECR with every platform it has: the manifest list (image index)
# and each platform's image, never just the platform of the host that runs this.
#
#   ci/mirror-image.sh SOURCE TARGET REGION
#   (make mirror-collector runs it with the collector's source, target and registry region)
#
# Uses whichever tool is installed, in this order; each copies the whole index:
#   crane copy SOURCE TARGET                       (go-containerregistry; all platforms unless --platform)
#   skopeo copy --all docker://SOURCE docker://TARGET  (--all: the list and every image in it)
#   docker buildx imagetools create --tag TARGET SOURCE  (a new index naming the same images)
# A plain `docker pull` / `tag` / `push` keeps only the host's platform: do not use it here.
# Credentials for ECR: the usual AWS chain (aws ecr get-login-password).
set -eu
[ $# -eq 3 ] || { echo "usage: $0 SOURCE TARGET REGION" >&2; exit 2; }
source=$1 target=$2 region=$3
registry=${target%%/*}
password() { aws ecr get-login-password --region "$region"; }
if command -v crane >/dev/null 2>&1; then
  password | crane auth login "$registry" --username AWS --password-stdin
  crane copy "$source" "$target"
elif command -v skopeo >/dev/null 2>&1; then
  password | skopeo login --username AWS --password-stdin "$registry"
  skopeo copy --all "docker://$source" "docker://$target"
elif docker buildx version >/dev/null 2>&1; then
  password | docker login --username AWS --password-stdin "$registry"
  docker buildx imagetools create --tag "$target" "$source"
else
  echo "error: install crane, skopeo or docker buildx to copy every platform of $source" >&2
  exit 2
fi
echo "copied $source to $target (every platform); check: python -m delivery collector-image --check"

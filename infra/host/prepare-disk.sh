#!/bin/sh
# prepare-disk DEVICE MOUNTPOINT OWNER_UID
# Runs at every boot of a scim-bridge host (scim-bridge-disk.service). Formats the data disk only when it
# carries no signature at all, mounts it, grows the filesystem to the disk, and makes the directories the
# bridge (database) and Caddy (certificates, ACME account) keep there. A disk with data is never formatted.
set -eu

if [ $# -ne 3 ]; then
  echo "usage: prepare-disk DEVICE MOUNTPOINT OWNER_UID" >&2
  exit 2
fi
device=$1
target=$2
owner=$3

# A disk attached by the cloud can appear a little after boot.
waited=0
while [ ! -e "$device" ]; do
  if [ "$waited" -ge 120 ]; then
    echo "prepare-disk: $device did not appear within 120 s; is the data disk attached?" >&2
    exit 1
  fi
  sleep 2
  waited=$((waited + 2))
done

# blkid -p reads the device itself, not a cache. Exit status 2 means no signature of any kind.
status=0
fstype=$(blkid -p -o value -s TYPE "$device") || status=$?
case $status in
  0)
    if [ -z "$fstype" ]; then
      echo "prepare-disk: $device carries a partition table or an unknown signature; refusing to format it" >&2
      exit 1
    fi
    echo "prepare-disk: $device has a $fstype filesystem; keeping its data"
    ;;
  2)
    # blkid also says "nothing found" for what it could not read at all: format only a real, non-empty disk.
    if [ ! -b "$device" ] || [ "$(blockdev --getsize64 "$device" 2>/dev/null || echo 0)" -eq 0 ]; then
      echo "prepare-disk: $device is not a readable block device; refusing to format it" >&2
      exit 1
    fi
    echo "prepare-disk: $device is blank; creating an ext4 filesystem"
    mkfs.ext4 -q -L scim-bridge -m 0 "$device"
    fstype=ext4
    ;;
  *)
    echo "prepare-disk: cannot probe $device (blkid exit status $status); refusing to format it" >&2
    exit 1
    ;;
esac

mkdir -p "$target"
if ! mountpoint -q "$target"; then
  mount -o noatime "$device" "$target"
fi
# The disk may have been made larger (dataDiskSizeGb): grow the filesystem to match, online.
if [ "$fstype" = ext4 ]; then
  resize2fs "$device" >/dev/null 2>&1 || echo "prepare-disk: resize2fs did not grow $device (carrying on)" >&2
fi

mkdir -p "$target/data" "$target/caddy" "$target/caddy-config"
chown "$owner:$owner" "$target/data"
chmod 0700 "$target/data" "$target/caddy" "$target/caddy-config"
echo "prepare-disk: $device mounted on $target"

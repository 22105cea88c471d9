#!/usr/bin/env bash
# A real, windowed Blender for the GUI tests: Debian 13 (trixie) Blender 4.3 in a debootstrap chroot.
#   chroot.sh prepare SRC   build the chroot once (about 4 min, 1.9 GB), then bind-mount SRC (the
#                           checkout) and its .venv's base interpreter at the same paths inside it
#   chroot.sh run CMD...    run CMD inside the chroot with a clean environment (pass VAR=value first)
#   chroot.sh release SRC   undo the mounts (always safe to call)
# The host's own apt sources are never touched: trixie only ever lives inside the chroot.
# Needs root (debootstrap, chroot, mount). CH (default /var/tmp/emote-gui-trixie) says where.
set -euo pipefail
CH=${EMOTE_GUI_CHROOT:-/var/tmp/emote-gui-trixie}
PACKAGES="blender xvfb xdotool imagemagick x11-apps libgl1-mesa-dri xauth procps python3-numpy"
in_chroot() { chroot "$CH" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

host_mirror() {  # the Debian mirror the host's apt already uses
    { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
        2>/dev/null || true; } \
        | grep -oE '^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)[a-z]+://[^[:space:]]+' \
        | grep -oE '[a-z]+://[^[:space:]]+' | grep -E '/debian/?$' | head -n 1 || true
}

base_prefix() { "$1/.venv/bin/python" -c 'import sys; print(sys.base_prefix)'; }

mount_all() {
    local src=$1 base
    base=$(base_prefix "$src")
    mountpoint -q "$CH/proc" || mount -t proc proc "$CH/proc"
    mountpoint -q "$CH/sys" || mount --rbind /sys "$CH/sys"
    mountpoint -q "$CH/dev" || mount --rbind /dev "$CH/dev"
    for d in "$src" "$base"; do
        mkdir -p "$CH$d"
        mountpoint -q "$CH$d" || mount --bind "$d" "$CH$d"
    done
    mount -o remount,bind,ro "$CH$base" 2>/dev/null || true
    # .venv may be a symlink into another checkout: make its target visible too
    local venv
    venv=$(readlink -f "$src/.venv")
    case "$venv" in "$src"/*) ;; *) mkdir -p "$CH$venv"; mountpoint -q "$CH$venv" || mount --bind "$venv" "$CH$venv" ;; esac
}

prepare() {
    local src=$1
    [ "$(id -u)" = 0 ] || { echo "error: the GUI tests need root (debootstrap, chroot, mount)" >&2; exit 1; }
    if [ ! -x "$CH/bin/bash" ]; then
        command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap; }
        local mirror
        mirror=$(host_mirror)
        [ -n "$mirror" ] || { echo "error: no Debian mirror in the host's apt sources" >&2; exit 1; }
        echo "[gui] building the trixie chroot in $CH (once, a few minutes)" >&2
        debootstrap --variant=minbase trixie "$CH.part" "$mirror" >&2
        mv "$CH.part" "$CH"
    fi
    cp /etc/resolv.conf "$CH/etc/resolv.conf"
    mount_all "$src"
    if ! in_chroot sh -c 'command -v blender && command -v Xvfb && command -v xdotool && command -v import && python3 -c "import numpy"' >/dev/null 2>&1; then
        echo "[gui] installing Blender, Xvfb, xdotool, ImageMagick in the chroot" >&2
        in_chroot env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        in_chroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PACKAGES >&2
    fi
}

release() {
    local src=$1 base venv
    base=$(base_prefix "$src" 2>/dev/null || true)
    venv=$(readlink -f "$src/.venv" 2>/dev/null || true)
    for d in "$venv" "$base" "$src"; do
        [ -n "$d" ] && mountpoint -q "$CH$d" && umount "$CH$d" 2>/dev/null || true
    done
    for d in dev sys; do mountpoint -q "$CH/$d" && umount -R "$CH/$d" 2>/dev/null || true; done
    mountpoint -q "$CH/proc" && umount "$CH/proc" 2>/dev/null || true
}

cmd=${1:-}
shift || true
case "$cmd" in
    prepare) prepare "$(readlink -f "$1")" ;;
    release) release "$(readlink -f "$1")" ;;
    run) in_chroot "$@" ;;
    *) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

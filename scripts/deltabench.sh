#!/bin/sh
# deltabench.sh prepares the delta benchmark's image pairs from real Debian packages and
# caches them under build/deltabench (a second run reuses them):
#   userland-old.img / userland-new.img: one base tree of common bookworm packages at their
#     candidate version, plus the packages of a point release (libc6, openssl, systemd, udev,
#     python3.11, perl, curl, libxml2 and their libraries) at their oldest version in
#     bookworm / bookworm-updates / bookworm-security (old) and their newest (new);
#   kernel-old.img / kernel-new.img: the linux-image-6.1.0-N-amd64 packages that the two
#     linux-image-amd64 versions depend on.
# Each tree is unpacked with dpkg-deb -x and made into an ext4 image with mke2fs -d.
# signing/payload's BenchmarkDebianPairs (make bench) reads the images.
set -eu
out=${1:-build/deltabench}
mkdir -p "$out/debs"
out=$(cd "$out" && pwd)

changed="libc6 libc-bin openssl libssl3 systemd libsystemd-shared libsystemd0 udev libudev1
python3.11 python3.11-minimal libpython3.11-minimal libpython3.11-stdlib perl perl-base
perl-modules-5.36 libperl5.36 curl libcurl4 libxml2"
base="coreutils bash util-linux libstdc++6 libgcc-s1 dpkg apt libapt-pkg6.0 tar gzip grep sed
findutils diffutils libsqlite3-0 libdb5.3 libncursesw6 libtinfo6 iproute2 e2fsprogs
libglib2.0-0 dbus libzstd1 liblzma5 zlib1g libkrb5-3 libgnutls30 libp11-kit0 libunistring2
libidn2-0 vim-tiny less procps ca-certificates libpam-modules login passwd mount libblkid1
libmount1 libsmartcols1 libselinux1 libpcre2-8-0 libcap2 libacl1 libattr1 libaudit1
libgcrypt20 libgpg-error0 libseccomp2 libcryptsetup12 libdevmapper1.02.1 libjson-c5
libkmod2 kmod libnss-systemd libpam-systemd libelf1 libbpf1 libmnl0 libxtables12 openssh-client
openssh-server libedit2 libfido2-1 libcbor0.8 libbsd0 libmd0 libexpat1 libffi8 libreadline8
libnghttp2-14 libpsl5 librtmp1 libssh2-1 libldap-2.5-0 libsasl2-2 libbrotli1 nano rsync
gpgv libtasn1-6 libnettle8 libhogweed6 libgmp10 netbase tzdata sudo"

# newest and oldest version of a package across the configured suites (one apt-cache run
# for all of them: it takes seconds per call)
if [ -z "$(apt-cache madison libc6 2>/dev/null)" ]; then apt-get update -qq; fi
# shellcheck disable=SC2086
apt-cache madison $base $changed linux-image-amd64 | awk -F'|' '{gsub(/ /,"",$1); gsub(/ /,"",$2); print $1, $2}' | sort -u >"$out/versions"
versions() { awk -v p="$1" '$1 == p {print $2}' "$out/versions"; }
oldest() { v=""; for x in $(versions "$1"); do if [ -z "$v" ] || dpkg --compare-versions "$x" lt "$v"; then v=$x; fi; done; echo "$v"; }
newest() { v=""; for x in $(versions "$1"); do if [ -z "$v" ] || dpkg --compare-versions "$x" gt "$v"; then v=$x; fi; done; echo "$v"; }

# deb NAME VERSION: the downloaded file of a package (see fetchall)
deb() { ls "$out/debs/$1_$(echo "$2" | sed 's/:/%3a/')_"*.deb 2>/dev/null | head -1; }

# fetchall NAME=VERSION...: download the packages not yet in debs/, in one apt-get run
fetchall() {
	missing=""
	for nv in "$@"; do [ -n "$(deb "${nv%%=*}" "${nv#*=}")" ] || missing="$missing $nv"; done
	# shellcheck disable=SC2086
	if [ -n "$missing" ]; then (cd "$out/debs" && apt-get download -q $missing 2>&1 | grep -v '^W: Download is performed unsandboxed' || true); fi
	for nv in "$@"; do
		[ -n "$(deb "${nv%%=*}" "${nv#*=}")" ] || { echo "deltabench: $nv was not downloaded" >&2; exit 1; }
	done
}

# image NAME SIZE_MIB DEB...: unpack the packages into a tree, make an ext4 image
image() {
	name=$1 size=$2; shift 2
	[ -s "$out/$name.img" ] && return 0
	rm -rf "$out/$name.tree" && mkdir -p "$out/$name.tree"
	for d in "$@"; do dpkg-deb -x "$d" "$out/$name.tree"; done
	# The same UUID, hash seed and timestamps in both images of a pair, as a reproducible
	# image build would have them.
	E2FSPROGS_FAKE_TIME=1700000000 mke2fs -q -t ext4 -b 4096 -U 4a6f8cbe-57b8-4a54-9f0e-2b8c1c8e7a11 \
		-E hash_seed=0d0e1a2b-3c4d-5e6f-7a8b-9c0d1e2f3a4b,root_owner=0:0 -d "$out/$name.tree" \
		"$out/$name.img.tmp" "${size}M"
	rm -rf "$out/$name.tree"
	mv "$out/$name.img.tmp" "$out/$name.img"
}

if [ ! -s "$out/userland-new.img" ] || [ ! -s "$out/userland-old.img" ]; then
	basev="" oldv="" newv=""
	for p in $base; do basev="$basev $p=$(newest "$p")"; done
	for p in $changed; do oldv="$oldv $p=$(oldest "$p")" newv="$newv $p=$(newest "$p")"; done
	# shellcheck disable=SC2086
	fetchall $basev $oldv $newv
	files() { for nv in "$@"; do deb "${nv%%=*}" "${nv#*=}"; done; }
	# shellcheck disable=SC2046,SC2086
	image userland-old 768 $(files $basev $oldv)
	# shellcheck disable=SC2046,SC2086
	image userland-new 768 $(files $basev $newv)
fi

if [ ! -s "$out/kernel-new.img" ] || [ ! -s "$out/kernel-old.img" ]; then
	kold=$(apt-cache show "linux-image-amd64=$(oldest linux-image-amd64)" | sed -n 's/^Depends: \(linux-image-[^ ]*\) (= \(.*\))$/\1=\2/p' | head -1)
	knew=$(apt-cache show "linux-image-amd64=$(newest linux-image-amd64)" | sed -n 's/^Depends: \(linux-image-[^ ]*\) (= \(.*\))$/\1=\2/p' | head -1)
	fetchall "$kold" "$knew"
	image kernel-old 512 "$(deb "${kold%%=*}" "${kold#*=}")"
	image kernel-new 512 "$(deb "${knew%%=*}" "${knew#*=}")"
fi
ls -l "$out"/*.img

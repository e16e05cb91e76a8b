#!/usr/bin/env bash
# Switchyard demo: one A/B update of a Flatcar-layout disk image, step by step.
#
# Run by `make demo` after `make build` (binaries in ./bin). Everything happens in a temporary
# directory that is removed on exit. Today it walks the partition table through an update
# (prepare USR-B, flip to it, boot it once, mark it good); later steps (serve, download,
# verify, write, reboot lock) slot in as more `step` calls.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${BIN:-./bin}
GO=${GO:-go}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-demo.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

bold=$'\e[1m'; dim=$'\e[2m'; reset=$'\e[0m'
[[ -t 1 ]] || { bold=; dim=; reset=; }
n=0
# step EXPLANATION COMMAND...: print a numbered explanation and the command, then run it.
step() {
	local what=$1; shift
	n=$((n + 1))
	printf '\n%s== %d. %s%s\n' "$bold" "$n" "$what" "$reset"
	printf '%s$ %s%s\n' "$dim" "$*" "$reset"
	"$@"
}

if [[ ! -x $BIN/updatectl ]]; then
	echo "demo: $BIN/updatectl is missing; run \`make build\` first" >&2
	exit 1
fi
UPDATECTL=$BIN/updatectl
MKDISK=$WORK/mkdisk
"$GO" build -o "$MKDISK" ./testimages/cmd/mkdisk
DISK=$WORK/disk.img

step "Build a Flatcar-layout disk image: USR-A is the running, known-good partition (priority 1, successful)" \
	"$MKDISK" -o "$DISK" --usr-size 8MiB
step "The partition table as GRUB's gptprio.next sees it" \
	"$UPDATECTL" gpt show "$DISK"
step "Before writing the new image, make USR-B unbootable (0/0/0), so a half-written partition can never boot" \
	"$UPDATECTL" gpt prepare "$DISK" -i 4
step "USR-B is prepared; in the full update the payload is streamed, verified and written to it here" \
	"$UPDATECTL" gpt show "$DISK"
step "Flip: USR-B above USR-A with one try and not yet successful; USR-A stays successful as the fallback" \
	"$UPDATECTL" gpt flip "$DISK" -i 4
step "The table after the flip: USR-B boots next" \
	"$UPDATECTL" gpt show "$DISK"
step "Reboot: the boot selector picks USR-B and uses its one try (if it never comes up, USR-A boots next time)" \
	"$UPDATECTL" gpt next "$DISK"
step "The table while USR-B is on trial: tries 0, not successful" \
	"$UPDATECTL" gpt show "$DISK"
step "USR-B came up healthy: mark it good" \
	"$UPDATECTL" gpt mark-good "$DISK" -i 4
step "Done: USR-B is the known-good partition and boots from now on; USR-A is the fallback" \
	"$UPDATECTL" gpt show "$DISK"
if command -v sgdisk >/dev/null; then
	step "An independent judge: Debian's sgdisk verifies the table" sgdisk -v "$DISK"
fi
if command -v cgpt >/dev/null; then
	step "Another: Debian's cgpt reads USR-B's priority, tries and successful bits" \
		bash -c "printf 'priority %s, tries %s, successful %s\n' \$(cgpt show -i 4 -P '$DISK') \$(cgpt show -i 4 -T '$DISK') \$(cgpt show -i 4 -S '$DISK')"
fi
printf '\n%sdemo finished%s\n' "$bold" "$reset"

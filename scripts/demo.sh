#!/usr/bin/env bash
# Switchyard demo: one whole A/B update of a Flatcar-layout disk image, on embedded defaults.
#
# Run by `make demo` after `make build` (binaries in ./bin). Everything happens in a temporary
# directory (and on loopback) and is removed on exit:
#   a disk image with version 1.0.0 in USR-A; omaha-server with its SQLite store, a
#   self-signed certificate and the TUF repository; offline keys; version 2.0.0 built, signed,
#   pinned in TUF and published on the stable channel; update-engine checking in over TLS,
#   verifying and writing USR-B with progress shown, flipping the GPT; the reboot simulated
#   with `updatectl gpt next`; the post-boot confirmation (mark good, event 3/2); the server's
#   view of the host. The reboot goes through the etcd reboot lock, on an in-process etcd.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${BIN:-./bin}
GO=${GO:-go}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-demo.XXXXXX")
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
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
# quiet COMMAND...: run a set-up command, showing it but only its last output line.
quiet() {
	printf '%s$ %s%s\n' "$dim" "$*" "$reset"
	local out
	if ! out=$("$@" 2>&1); then
		printf '%s\n' "$out" >&2
		return 1
	fi
	printf '%s\n' "$out" | tail -n 1
}
for b in omaha-server syctl update-engine updatectl; do
	[[ -x $BIN/$b ]] || { echo "demo: $BIN/$b is missing; run \`make build\` first" >&2; exit 1; }
done
for tool in openssl mkfs.ext4; do
	command -v "$tool" >/dev/null || { echo "demo: $tool is missing (apt-get install openssl e2fsprogs; make deps does)" >&2; exit 1; }
done
SYCTL=$BIN/syctl UPDATECTL=$BIN/updatectl ENGINE=$BIN/update-engine SERVER=$BIN/omaha-server
MKDISK=$WORK/mkdisk DEVETCD=$WORK/devetcd
"$GO" build -o "$MKDISK" ./testimages/cmd/mkdisk
"$GO" build -o "$DEVETCD" ./testimages/cmd/devetcd
MACHINE=5a1e0c0ffee0000000000000000000d1
DISK=$WORK/disk.img

# A USR filesystem image of the given version: a read-only /usr holding the release file.
usr_image() { # VERSION OUT
	local root=$WORK/usr-$1
	mkdir -p "$root/share/flatcar" "$root/lib/switchyard"
	printf 'FLATCAR_RELEASE_VERSION=%s\nFLATCAR_RELEASE_BOARD=amd64-usr\n' "$1" > "$root/share/flatcar/release"
	# some real content, so the payload has something to compress
	cp -r /usr/share/doc/bash /usr/share/doc/coreutils "$root/lib/switchyard/" 2>/dev/null || true
	# firmware shared by both versions, with a 64 KiB block that changed in each release
	cp "$WORK/firmware.bin" "$root/lib/switchyard/firmware.bin"
	head -c 64K /dev/urandom | dd of="$root/lib/switchyard/firmware.bin" bs=64K seek=7 conv=notrunc status=none
	# The image fills the USR partition exactly (mkdisk --usr-size below): the applier refuses
	# a target whose size is not the payload's partition size.
	mkfs.ext4 -q -F -L USR -d "$root" "$2" 32M
}

printf '%sSwitchyard demo%s in %s\n' "$bold" "$reset" "$WORK"

step "Build version 1.0.0 and 2.0.0 of the USR filesystem, and a Flatcar-layout disk with 1.0.0 in USR-A" \
	bash -c "$(declare -f usr_image); WORK='$WORK'; head -c 3M /dev/urandom > '$WORK/firmware.bin'; usr_image 1.0.0 '$WORK/usr-1.img' && usr_image 2.0.0 '$WORK/usr-2.img' && '$MKDISK' -o '$DISK' --usr-size 32MiB --usr-a-image '$WORK/usr-1.img' && echo 'disk: $DISK'"
step "The host's partition table: USR-A runs and is known good; USR-B is empty and unbootable" \
	"$UPDATECTL" gpt show "$DISK"

step "Release engineer, offline: TUF root, targets, snapshot and timestamp keys, and the payload key (unencrypted: demo only)" \
	"$SYCTL" keys init --dir "$WORK/keys" --insecure-no-passphrase
step "Build the payload for 2.0.0: 16 MiB chunks compressed with xz, zero chunks skipped" \
	"$SYCTL" payload build --image "$WORK/usr-2.img" --version 2.0.0 --board amd64-usr --out "$WORK/update.sy"
step "Sign its manifest with the payload key" \
	"$SYCTL" payload sign --key "$WORK/keys/payload.key" "$WORK/update.sy"
step "Verify it as a host would: header, signature, every operation hash, the partition hash" \
	"$SYCTL" payload verify --pubkey "$WORK/keys/payload.pub" "$WORK/update.sy"
step "Build a delta for hosts on 1.0.0: any 4 KiB block 1.0.0 holds is copied from the active partition, changed data is patched against it" \
	"$SYCTL" payload build --image "$WORK/usr-2.img" --version 2.0.0 --board amd64-usr \
	--source "$WORK/usr-1.img" --source-version 1.0.0 --out "$WORK/delta-1.0.0.sy"
quiet "$SYCTL" payload sign --key "$WORK/keys/payload.key" "$WORK/delta-1.0.0.sy"
FULL_BYTES=$(stat -c %s "$WORK/update.sy") DELTA_BYTES=$(stat -c %s "$WORK/delta-1.0.0.sy")
printf 'full payload %d bytes, delta from 1.0.0 %d bytes: %d bytes saved (the delta is %d%% of the full payload)\n' \
	"$FULL_BYTES" "$DELTA_BYTES" $((FULL_BYTES - DELTA_BYTES)) $((100 * DELTA_BYTES / FULL_BYTES))
PSIZE=$(stat -c %s "$WORK/usr-2.img")
PSUM=$(sha256sum "$WORK/usr-2.img" | cut -d' ' -f1)
quiet "$SYCTL" tuf init --repo "$WORK/tuf" --root "$WORK/keys/1.root.json"
step "Pin the payload in TUF (length, SHA-256, version, board, release counter, partition size and hash)" \
	"$SYCTL" tuf add-target --repo "$WORK/tuf" --name amd64-usr/2.0.0/update.sy --file "$WORK/update.sy" \
	--version 2.0.0 --board amd64-usr --channel stable --release-counter 2 \
	--partition-size "$PSIZE" --partition-sha256 "$PSUM"
step "Pin the delta as its own target, marked with its source version" \
	"$SYCTL" tuf add-target --repo "$WORK/tuf" --name amd64-usr/2.0.0/delta-1.0.0.sy --file "$WORK/delta-1.0.0.sy" \
	--version 2.0.0 --board amd64-usr --channel stable --release-counter 2 \
	--partition-size "$PSIZE" --partition-sha256 "$PSUM" --source-version 1.0.0
step "Sign the next targets metadata with the offline targets key" \
	"$SYCTL" tuf sign-targets --repo "$WORK/tuf" --key "$WORK/keys/targets.key"

printf '\n%s== Start omaha-server: SQLite store, self-signed certificate, TUF repository with the online keys%s\n' "$bold" "$reset"
quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/tls.key" -out "$WORK/tls.crt"
TOKEN=$("$SERVER" token create --data-dir "$WORK/server" --role admin | tail -n 1)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18443)
URL=https://127.0.0.1:$PORT
printf '%s$ %s serve --data-dir … --listen 127.0.0.1:%s --tls-cert … --tuf-root keys/1.root.json --tuf-key keys/snapshot.key --tuf-key keys/timestamp.key%s\n' "$dim" "$SERVER" "$PORT" "$reset"
"$SERVER" serve --data-dir "$WORK/server" --listen "127.0.0.1:$PORT" --tls-cert "$WORK/tls.crt" --tls-key "$WORK/tls.key" \
	--tuf-root "$WORK/keys/1.root.json" --tuf-key "$WORK/keys/snapshot.key" --tuf-key "$WORK/keys/timestamp.key" \
	> "$WORK/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -sk "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sfk "$URL/healthz" >/dev/null || { cat "$WORK/server.log"; exit 1; }
echo "omaha-server is up at $URL"
export SYCTL_SERVER=$URL SYCTL_TOKEN=$TOKEN
CA=(--cacert "$WORK/tls.crt")

step "Operator: create the Flatcar application" \
	"$SYCTL" app create "${CA[@]}" --id '{e96281a6-d1af-4bde-9a0a-97b76e56dc57}' --name Flatcar
step "Publish 2.0.0 and its delta: the server hashes each upload and refuses it unless the signed targets metadata pins it" \
	"$SYCTL" release publish "${CA[@]}" --version 2.0.0 --board amd64-usr --file "$WORK/update.sy" \
	--delta "$WORK/delta-1.0.0.sy" --targets "$WORK/tuf/targets.json"
quiet "$SYCTL" channel create "${CA[@]}" --name stable
step "Point the stable channel at 2.0.0, and let the group 'stable' follow it" \
	"$SYCTL" channel set "${CA[@]}" --name stable --version 2.0.0 --board amd64-usr
quiet "$SYCTL" group create "${CA[@]}" --name stable --track stable --channel stable

printf '\n%s== Start an in-process etcd for the reboot lock (the fleet would use its etcd cluster)%s\n' "$bold" "$reset"
"$DEVETCD" > "$WORK/etcd.url" 2> "$WORK/etcd.log" &
PIDS+=($!)
for _ in $(seq 300); do [[ -s $WORK/etcd.url ]] && break; sleep 0.1; done
ETCD=$(head -n 1 "$WORK/etcd.url")
[[ -n $ETCD ]] || { cat "$WORK/etcd.log"; exit 1; }
echo "etcd is up at $ETCD"
LOCK=(--endpoints "$ETCD" --group default)
quiet "$UPDATECTL" lock set-max 1 "${LOCK[@]}"

printf '\n%s== The host: update-engine with version 1.0.0 on USR-A, checking in over TLS%s\n' "$bold" "$reset"
SOCK=$WORK/update-engine.sock
# The boot ID tells the daemon a reboot happened; a file stands in for the kernel's.
cat /proc/sys/kernel/random/uuid > "$WORK/boot_id"
ENGINE_ARGS=(-disk "$DISK" -board amd64-usr -group stable -server "$URL/v1/update/" -server-ca "$WORK/tls.crt"
	-tuf-root "$WORK/keys/1.root.json" -payload-keys "$WORK/keys/payload.pub" -state-dir "$WORK/state"
	-socket "$SOCK" -set "MACHINE_ID=$MACHINE" -set "BOOT_ID_FILE=$WORK/boot_id" -config /dev/null
	-reboot-strategy etcd-lock -set "LOCKSMITHD_ENDPOINT=$ETCD" -set "REBOOT_COMMAND=touch $WORK/rebooted")
printf '%s$ %s -active-partition USR-A -version 1.0.0 %s%s\n' "$dim" "$ENGINE" "${ENGINE_ARGS[*]}" "$reset"
"$ENGINE" -active-partition USR-A -version 1.0.0 "${ENGINE_ARGS[@]}" > "$WORK/engine.log" 2>&1 &
ENGINE_PID=$!
PIDS+=($ENGINE_PID)
for _ in $(seq 100); do [[ -S $SOCK ]] && break; sleep 0.1; done
[[ -S $SOCK ]] || { cat "$WORK/engine.log"; exit 1; }
step "Ask the daemon to check now (installsource=ondemandupdate, delta_okay=true) and watch it: TUF refresh, the delta's download, source check, verify, write USR-B, flip" \
	"$UPDATECTL" check --wait --socket "$SOCK"
step "The daemon's status, as update_engine_client -status prints it" \
	"$UPDATECTL" status --socket "$SOCK"
for _ in $(seq 100); do [[ -e $WORK/rebooted ]] && break; sleep 0.1; done
[[ -e $WORK/rebooted ]] || { echo "the daemon did not reboot"; cat "$WORK/engine.log"; exit 1; }
step "It took the group's only reboot slot in etcd and then rebooted (here: a command that records the reboot); the slot stays held across the reboot" \
	"$UPDATECTL" lock status "${LOCK[@]}"
kill "$ENGINE_PID"; wait "$ENGINE_PID" 2>/dev/null || true
step "After the flip: USR-B boots next with one try; USR-A stays the known-good fallback" \
	"$UPDATECTL" gpt show "$DISK"
step "Reboot (simulated): the boot loader's gptprio.next picks USR-B and uses its try" \
	"$UPDATECTL" gpt next "$DISK"
cat /proc/sys/kernel/random/uuid > "$WORK/boot_id"
step "Back up on 2.0.0: health checks pass, USR-B is marked good, event 3/2 reports the update, the slot is released" \
	"$ENGINE" -post-boot -active-partition USR-B -version 2.0.0 "${ENGINE_ARGS[@]}"
step "The partition table now: USR-B is known good" \
	"$UPDATECTL" gpt show "$DISK"
step "The server's view of the host: complete on 2.0.0, with its status history" \
	"$SYCTL" instance show "${CA[@]}" "$MACHINE"
step "Independent judges: Debian's sgdisk verifies the table, and cgpt reads USR-B's priority/tries/successful" \
	bash -c "sgdisk -v '$DISK' | sed -n 2p; printf 'cgpt: USR-B priority %s, tries %s, successful %s\n' \$(cgpt show -i 4 -P '$DISK') \$(cgpt show -i 4 -T '$DISK') \$(cgpt show -i 4 -S '$DISK')"
step "The reboot slot is free again for the next host of the group" \
	"$UPDATECTL" lock status "${LOCK[@]}"

printf '\n%sdemo finished%s\n' "$bold" "$reset"

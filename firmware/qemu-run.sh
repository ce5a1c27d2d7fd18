#!/usr/bin/env bash
# Cargo runner for the firmware targets: run an ELF on the QEMU board it was built for (Arm:
# mps2-an385, -an386, -an500, -an505, mps3-an547 with qemu-system-arm; RISC-V: virt with
# qemu-system-riscv32, no firmware) and exit with the program's semihosting exit code.
# An ELF built for a real board (nucleo-f446re, nrf52840-dk, pico2) names its chip instead
# (`edgeslim-probe-rs-chip <chip>;`, edgeslim-firmware/src/board.rs): the runner then hands it
# to `probe-rs run --chip <chip>`, which flashes the board through the attached debug probe,
# streams its defmt log over RTT and exits with the program's exit code.
#
#   qemu-run.sh ELF [extra QEMU args, or extra `probe-rs run` args for a real board...]
#
# Environment:
#   QEMU_TIMEOUT         wall-clock limit in seconds (default 60); exit 124 when hit
#   QEMU_MACHINE         QEMU machine, QEMU_CPU its CPU (default: the board the ELF names in its
#                        `edgeslim-qemu-board <machine> <cpu>;` marker, edgeslim-firmware/src/board.rs;
#                        mps2-an386 and cortex-m4 for an ELF without one)
#   QEMU_RUN_LOG_FORMAT  defmt-print --log-format (default: defmt-print's own)
#   QEMU_ICOUNT          -icount options (default shift=0,align=off,sleep=off: virtual time is
#                        1 ns per instruction, so SysTick and mcycle counts are exactly
#                        repeatable; set it empty to run on host time)
#   PROBE_RS_CHIP        a real board: the chip probe-rs flashes (default: the ELF's marker)
#
# The QEMU flags avoid its known hangs (docs/firmware-toolchain.md): no -nographic, stdin from
# /dev/null, no monitor/serial on stdio, and a timeout. defmt frames arrive on stdout through
# semihosting and are decoded by defmt-print when the ELF has a .defmt section.
set -uo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 ELF [qemu args...]" >&2
  exit 2
fi
elf=$1
shift

# A real board: probe-rs flashes it and streams its log (defmt over RTT).
chip=$(grep -a -o -m 1 -E 'edgeslim-probe-rs-chip [A-Za-z0-9_.-]+;' "$elf" | head -n 1)
if [ -n "$chip" ]; then
  chip=${chip#edgeslim-probe-rs-chip }
  chip=${PROBE_RS_CHIP:-${chip%;}}
  if ! command -v probe-rs >/dev/null; then
    echo "qemu-run: $elf is built for a real board (chip $chip): flashing it needs probe-rs," \
      "which is not installed. Install it with: cargo install probe-rs-tools --locked" \
      "(see firmware/README.md, \"Flashing a real board\")" >&2
    exit 127
  fi
  fmt=()
  if [ -n "${QEMU_RUN_LOG_FORMAT:-}" ]; then
    fmt=(--log-format "$QEMU_RUN_LOG_FORMAT")
  fi
  exec probe-rs run --chip "$chip" "${fmt[@]}" "$@" "$elf"
fi

# The board the program was built for, from its marker.
machine=mps2-an386
cpu=cortex-m4
marker=$(grep -a -o -m 1 -E 'edgeslim-qemu-board [a-z0-9-]+ [a-z0-9-]+;' "$elf" | head -n 1)
if [ -n "$marker" ]; then
  read -r _ machine cpu <<<"${marker%;}"
fi

# The architecture from the ELF header (e_machine, 2 bytes little-endian at offset 18): 243 is
# RISC-V, whose virt board starts the ELF itself (-bios none: QEMU's reset code jumps to the
# start of DRAM, where the image begins); anything else is Arm.
system=(qemu-system-arm)
if [ "$(od -An -t u2 -j 18 -N 2 "$elf" | tr -d ' ')" = 243 ]; then
  system=(qemu-system-riscv32 -bios none)
fi

qemu=(timeout --kill-after=5 "${QEMU_TIMEOUT:-60}"
  "${system[@]}" -machine "${QEMU_MACHINE:-$machine}" -cpu "${QEMU_CPU:-$cpu}"
  -display none -monitor none -serial none
  -semihosting-config enable=on,target=native)
icount=${QEMU_ICOUNT-shift=0,align=off,sleep=off}
if [ -n "$icount" ]; then
  qemu+=(-icount "$icount")
fi
qemu+=(-kernel "$elf" "$@")

# `grep >/dev/null`, not `grep -q`: -q exits at the first match and can race with SIGPIPE.
if grep -a -e '\.defmt' "$elf" >/dev/null; then
  if ! command -v defmt-print >/dev/null; then
    echo "qemu-run: $elf logs with defmt but defmt-print is not installed" \
      "(cargo install --locked defmt-print); its log is not shown" >&2
    "${qemu[@]}" </dev/null >/dev/null
    status=$?
  else
    fmt=()
    if [ -n "${QEMU_RUN_LOG_FORMAT:-}" ]; then
      fmt=(--log-format "$QEMU_RUN_LOG_FORMAT")
    fi
    "${qemu[@]}" </dev/null | defmt-print "${fmt[@]}" -e "$elf"
    codes=("${PIPESTATUS[@]}")
    status=${codes[0]}
    if [ "$status" -eq 0 ] && [ "${codes[1]}" -ne 0 ]; then
      echo "qemu-run: defmt-print failed (exit ${codes[1]})" >&2
      status=${codes[1]}
    fi
  fi
else
  "${qemu[@]}" </dev/null
  status=$?
fi

if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "qemu-run: $elf timed out after ${QEMU_TIMEOUT:-60} s" >&2
  exit 124
fi
exit "$status"

#!/bin/sh
# Runs every fuzz target in turn for SECONDS each (default 600) and prints
# one summary line per target: executions, executions per second, corpus
# size, and findings (crash, timeout, leak and out-of-memory inputs).
#
#   scripts/fuzz.sh [SECONDS [TARGET...]]
#
# Without TARGETs, every target `cargo fuzz list` names.
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# One target runs at a time on one core (-jobs=1). The committed seeds in
# fuzz/corpus/TARGET are read, never written; what the fuzzer finds goes
# to fuzz/work/TARGET (ignored by git), findings to fuzz/artifacts/TARGET,
# each run's log to fuzz/work/logs/TARGET.log.
#
# Builds are optimised with overflow checks and debug assertions (cargo
# fuzz's default) but without AddressSanitizer: the fuzzed code is safe
# Rust (request_decode reaches the supervisor's decoders through a fake
# target, never its unsafe `sys` calls), so ASan would only slow it down.
# FUZZ_SANITIZER=address puts it back.
set -eu

seconds=${1:-600}
case $seconds in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS [TARGET...]]" >&2
	exit 2
	;;
esac
[ $# -gt 0 ] && shift
root=$(cd "$(dirname "$0")/.." && pwd)
fuzz=$root/fuzz
logs=$fuzz/work/logs
mkdir -p "$logs"

sanitizer=${FUZZ_SANITIZER:-none}
targets=${*:-$(cd "$fuzz" && cargo +nightly fuzz list)}
(cd "$fuzz" && cargo +nightly fuzz build -s "$sanitizer") >"$logs/build.log" 2>&1 || {
	echo "build failed, see $logs/build.log" >&2
	exit 1
}

# Per-target libFuzzer options: an emulator run reads at most 64
# operations, a request at most 8 pages of 255 bytes after its 53 bytes of
# registers; the tar reader must stay within a bounded amount of memory.
options() {
	case $1 in
	emulator_ops) echo "-max_len=1024" ;;
	request_decode) echo "-max_len=2200" ;;
	tar_reader) echo "-rss_limit_mb=512" ;;
	*) echo "" ;;
	esac
}

found=0
for t in $targets; do
	work=$fuzz/work/$t
	artifacts=$fuzz/artifacts/$t
	mkdir -p "$work" "$artifacts" "$fuzz/corpus/$t"
	before=$(ls "$artifacts" | wc -l)
	# libFuzzer writes its job's log to fuzz-0.log in the current directory.
	(
		cd "$logs"
		rm -f fuzz-0.log
		# shellcheck disable=SC2046
		cargo +nightly fuzz run -s "$sanitizer" --fuzz-dir "$fuzz" "$t" "$work" "$fuzz/corpus/$t" -- \
			-max_total_time="$seconds" -jobs=1 -workers=1 -timeout=10 \
			-print_final_stats=1 -artifact_prefix="$artifacts/" $(options "$t") \
			>/dev/null 2>&1 || true
		mv -f fuzz-0.log "$t.log" 2>/dev/null || true
	)
	log=$logs/$t.log
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
	corpus=$(ls "$work" | wc -l)
	new=$(($(ls "$artifacts" | wc -l) - before))
	found=$((found + new))
	printf '%-14s %ss  runs %s  exec/s %s  corpus %s  peak rss %s MB  findings %s\n' \
		"$t" "$seconds" "${runs:-?}" "${rate:-?}" "$corpus" "${rss:-?}" "$new"
	if [ "$new" -gt 0 ]; then
		ls -t "$artifacts" | head -n "$new" | sed "s|^|  $artifacts/|"
	fi
done
[ "$found" -eq 0 ]

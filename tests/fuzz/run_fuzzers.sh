#!/usr/bin/env bash
# tests/fuzz/run_fuzzers.sh [SECONDS_PER_TARGET] [TARGET ...]
#
# Builds the libFuzzer targets (preset "fuzz", build/fuzz) when needed, then runs
# each target (default: all) for SECONDS_PER_TARGET seconds (default 60) on a copy
# of its seed corpus (tests/fuzz/corpus/<target>), and prints one summary line per
# target: executions, exec/s, and the coverage libFuzzer reached (cov: edges, ft:
# features) with the corpus size. Exits non-zero if any target crashed, hung,
# leaked, allocated too much or broke an invariant; the input that did it is then
# in $OUT/artifacts/<target>/ and the log in $OUT/<target>.log.
#
# Environment: GENAI_FUZZ_PRESET (the CMake preset that configures the build when it
# is not configured yet; default fuzz), GENAI_FUZZ_BUILD (default <repo>/build/<preset>), GENAI_FUZZ_OUT (run
# outputs: grown corpora, logs, artifacts; default /tmp/genai-fuzz),
# GENAI_FUZZ_JOBS (build parallelism, and how many targets run at once with
# GENAI_FUZZ_PARALLEL=1; default 2), GENAI_FUZZ_PARALLEL (1: run targets side by side,
# CI does; default 0: one at a time, the documented 10-minute runs), GENAI_FUZZ_NICE
# (default 5), GENAI_FUZZ_NO_BUILD=1 (run the binaries as they are, without building).
set -u
SECS=${1:-60}
[ $# -gt 0 ] && shift
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PRESET=${GENAI_FUZZ_PRESET:-fuzz}
BUILD=${GENAI_FUZZ_BUILD:-$ROOT/build/$PRESET}
OUT=${GENAI_FUZZ_OUT:-/tmp/genai-fuzz}
JOBS=${GENAI_FUZZ_JOBS:-2}
NICE=${GENAI_FUZZ_NICE:-5}
PARALLEL=${GENAI_FUZZ_PARALLEL:-0}
ALL="safetensors checkpoint idx image bpe wordpiece config midi"
TARGETS=${*:-$ALL}

# The largest input per target: large enough for every structure of the format,
# small enough that the largest allocation a valid input of that size may make
# (8x for safetensors' U8 -> int64, 1032:1 for gzip IDX then 8x, 8256 pixels per byte
# for images, as float32 RGBA) stays under the malloc limit below.
max_len() {
  case $1 in
    safetensors|checkpoint) echo 65536 ;;
    image) echo 2048 ;;
    *) echo 16384 ;;
  esac
}
MALLOC_LIMIT_MB=512  # any single allocation above this is reported as a bug

if [ "${GENAI_FUZZ_NO_BUILD:-0}" != 1 ]; then
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    (cd "$ROOT" && cmake --preset "$PRESET" -B "$BUILD") || exit 2
  fi
  build_targets=""
  for t in $TARGETS; do build_targets="$build_targets fuzz_$t"; done
  cmake --build "$BUILD" -j"$JOBS" --target $build_targets || exit 2
fi

mkdir -p "$OUT"
# run_target T: fuzz T for $SECS seconds; writes its summary line to $OUT/T.result
run_target() {
  t=$1
  bin="$BUILD/tests/fuzz/fuzz_$t"
  corpus="$OUT/corpus/$t"
  artifacts="$OUT/artifacts/$t"
  log="$OUT/$t.log"
  mkdir -p "$corpus" "$artifacts"
  cp -n "$ROOT/tests/fuzz/corpus/$t/"* "$corpus/" 2>/dev/null
  start=$(date +%s)
  nice -n "$NICE" "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=$MALLOC_LIMIT_MB \
    -max_len="$(max_len "$t")" -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(printf '%s' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  ft=$(printf '%s' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
  corp=$(printf '%s' "$last" | sed -n 's/.* corp: \([^ ]*\).*/\1/p')
  if [ $rc -eq 0 ]; then
    result=ok
  else
    result="FAILED (exit $rc; see $log and $artifacts/)"
  fi
  printf '%-12s %8s %12s %8s %7s %7s %10s  %s\n' "$t" "$secs" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" \
    "${corp:-?}" "$result" > "$OUT/$t.result"
}

printf '%-12s %8s %12s %8s %7s %7s %10s  %s\n' target seconds executions exec/s cov ft corpus result
status=0
running=0
for t in $TARGETS; do
  rm -f "$OUT/$t.result"
  if [ "$PARALLEL" = 1 ]; then
    run_target "$t" &
    running=$((running + 1))
    if [ $running -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
  else
    run_target "$t"
    cat "$OUT/$t.result"
  fi
done
wait
for t in $TARGETS; do
  [ "$PARALLEL" = 1 ] && cat "$OUT/$t.result" 2>/dev/null
  grep -q '  ok$' "$OUT/$t.result" 2>/dev/null || status=1
done
exit $status

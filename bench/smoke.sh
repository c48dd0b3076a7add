#!/bin/sh
# bench-smoke: run every bench workload at small size and check that the
# results file has every field.  Figures are not judged: no timing
# assertions (CI machines are noisy); this only proves the bench runs, the
# invariants hold on its workloads (iomap-bench exits non-zero otherwise)
# and the output is complete.
set -eu
bench=${1:-bench/iomap-bench}
out=${2:-bench/results-smoke.json}

"$bench" --small --out "$out"

fail=0
# Headline fields: a number each (no null).
# Issue 15's table first.
for f in balloon_real_warm_ms balloon_real_cold_ms balloon_real_p99_us \
         ingest_vs_ideal_ratio ingest_rand_events_per_s \
         tracker_time_vs_best_peer_ratio tracker_memory_vs_best_peer_ratio \
         bytes_per_mapping_worst api_cpu_us_per_status api_capacity_vs_constant_ratio \
         list_timer_lateness_p999_ms list_entries_per_s baseline_vcpu_blocked_time_ratio \
         ingest_seq_events_per_s balloon_1g_ms \
         balloon_p99_us bytes_per_mapping api_rps api_max_stall_ms \
         baseline_needless_unmaps baseline_vcpu_blocked_ms baseline_ratio; do
    if ! grep -Eq "^  \"$f\": -?[0-9][0-9.e+-]*,?\$" "$out"; then
        echo "bench-smoke: $out: field $f missing or not a number" >&2
        fail=1
    fi
done
if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$out" ||
        { echo "bench-smoke: $out is not valid JSON" >&2; fail=1; }
fi
[ $fail -eq 0 ] && echo "bench-smoke: $out has every field"
exit $fail

#!/usr/bin/env bash
# Runs the cargo-fuzz targets one after the other on the stable toolchain (`-s none`),
# each for SECONDS (default 660), at low priority, and prints one summary line per target:
# executions, exec/s, coverage, corpus growth and findings (files libFuzzer wrote under
# fuzz/artifacts/<target>/). Logs go to $LOG_DIR (default /tmp/meshc-fuzz).
#
#   bash tests/reliability/fuzz.sh [SECONDS] [target ...]
#
# Seed corpora first (see fuzz/README.md); the run grows them in place.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-660}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(yaml_front_end table_loader executor request_wire response_wire)
fi
log_dir=${LOG_DIR:-/tmp/meshc-fuzz}
mkdir -p "$log_dir"
nice -n 10 cargo fuzz build -s none >"$log_dir/build.log" 2>&1
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    corpus_before=$(find "fuzz/corpus/$target" -type f | wc -l)
    findings_before=$(find "fuzz/artifacts/$target" -type f | wc -l)
    extra=()
    if [ "$target" = yaml_front_end ]; then
        extra=(-dict=fuzz/yaml.dict -close_fd_mask=2)
    fi
    started=$(date -u +%FT%TZ)
    # -fork is not used: a finding stops the run, which is what we want to look at.
    set +e
    nice -n 10 cargo fuzz run -s none "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        "${extra[@]}" >"$log_dir/$target.log" 2>&1
    status=$?
    set -e
    corpus_after=$(find "fuzz/corpus/$target" -type f | wc -l)
    findings_after=$(find "fuzz/artifacts/$target" -type f | wc -l)
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log_dir/$target.log" | grep -o '[0-9]*$' || echo '?')
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log_dir/$target.log" | grep -o '[0-9]*$' || echo '?')
    peak=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log_dir/$target.log" | grep -o '[0-9]*$' || echo '?')
    last=$(grep -E '^#[0-9]+' "$log_dir/$target.log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || echo 'cov ?')
    echo "$started $target ${seconds}s exit=$status runs=$runs exec/s=$rate peak_rss_mb=$peak $last corpus=$corpus_before->$corpus_after findings=$((findings_after - findings_before))"
done

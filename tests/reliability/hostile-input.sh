#!/usr/bin/env bash
# Hostile policy input against the release meshc: each case is generated, checked (and, where
# it matters, built) with a 300 s limit, and reported with its exit code, wall time, peak
# memory and the diagnostic codes meshc gave. None may crash, hang or run away with memory.
#
#   bash tests/reliability/hostile-input.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
build_release
cases=$WORK/cases
mkdir -p "$cases"

vs_with_regex() { # NAME REGEX...: one VirtualService, one header-regex rule per pattern
    local dir=$cases/$1
    shift
    mkdir -p "$dir"
    python3 - "$dir/vs.yaml" "$@" <<'PY'
import json, sys
out, patterns = sys.argv[1], sys.argv[2:]
rules = "".join(
    f"  - match:\n    - headers:\n        x-user:\n          regex: {json.dumps(p)}\n"
    f"    route:\n    - destination:\n        host: reviews\n" for p in patterns)
open(out, "w").write(
    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\n"
    f"spec:\n  hosts:\n  - reviews\n  http:\n{rules}  - route:\n    - destination:\n        host: reviews\n"
    "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: reviews\nspec:\n  ports:\n  - name: http\n    port: 9080\n")
PY
}

log "generating the cases"
python3 - "$cases" <<'PY'
import os, sys
root = sys.argv[1]
def write(name, data, file="p.yaml"):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, file), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [" + ", ".join([f"*a{i-1}"] * 10) + "]\n" for i in range(1, 12))
write("alias-bomb", bomb)
write("deep-flow-10000", "[" * 10000 + "]" * 10000)
write("deep-block-500", "".join(" " * i + "a:\n" for i in range(500)))
write("nul-bytes", b"apiVersion: v1\x00\nkind: x\n")
write("non-utf8", b"name: caf\xe9\n")
doc = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{}\n"
write("docs-100000", "".join(doc.format(i) for i in range(100000)))
write("docs-100001", "".join(doc.format(i) for i in range(100001)))
vs = ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: r{}\nspec:\n"
      "  hosts:\n  - r{}\n  http:\n  - route:\n    - destination:\n        host: r{}\n---\n")
block = "".join(vs.format(i, i, i) for i in range(1000))
write("file-100MB", (block * (100 * 2**20 // len(block) + 1))[: 100 * 2**20 + 1])
value = "v" * 560
write("file-60MB-100000-docs", "".join(
    f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\ndata:\n  k: {value}\n" for i in range(100000)))
PY
mkdir -p "$cases/symlink-loop"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n' >"$cases/symlink-loop/ok.yaml"
ln -s . "$cases/symlink-loop/loop"
ln -s ../symlink-loop "$cases/symlink-loop/up"
vs_with_regex regex-nested-1000x1000 '(a{1000}){1000}'
vs_with_regex regex-nested-10x10x11 '((a{10}){10}){11}'
vs_with_regex regex-1001 'a{1001}'
vs_with_regex regex-unicode-word-1000 '\w{1000}'
mapfile -t many < <(for i in $(seq 200); do echo "u$i\\w{1000}"; done)
vs_with_regex regex-200x-unicode-word-1000 "${many[@]}"

run() { # COMMAND CASE: one line of figures
    local command=$1 name=$2 dir=$cases/$2 out=$WORK/$2.$1
    local args=(check "$dir" --output-format json)
    [ "$command" = build ] && args=(build "$dir" -o "$WORK/$name.mtbl")
    set +e
    /usr/bin/time -f '%e %M' -o "$out.time" timeout 300 "$MESHC" "${args[@]}" >"$out.stdout" 2>"$out.stderr"
    local status=$?
    set -e
    local secs kib codes
    # /usr/bin/time puts "Command exited with non-zero status N" first when N > 0.
    read -r secs kib < <(tail -n 1 "$out.time") || true
    codes=$(python3 -c '
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    codes = {}
    for x in d["diagnostics"]:
        codes[x["code"]] = codes.get(x["code"], 0) + 1
    print(" ".join(f"{c}x{n}" if n > 1 else c for c, n in sorted(codes.items())) or "none")
except Exception:
    print("-")' "$out.stdout")
    [ "$command" = build ] && codes=$(head -c 160 "$out.stderr" | tr '\n' ' ')
    if grep -q panicked "$out.stderr"; then codes="PANIC $codes"; fi
    printf '%-30s %-5s exit %-3s %7ss %8s KiB  %s\n' "$name" "$command" "$status" "$secs" "$kib" "$codes"
}
for c in alias-bomb deep-flow-10000 deep-block-500 nul-bytes non-utf8 docs-100000 docs-100001 \
    file-100MB file-60MB-100000-docs symlink-loop regex-nested-1000x1000 regex-nested-10x10x11 \
    regex-1001 regex-unicode-word-1000 regex-200x-unicode-word-1000; do
    run check "$c"
done
for c in regex-unicode-word-1000 regex-200x-unicode-word-1000; do
    run build "$c"
done

#!/bin/sh
# Regenerates the table seeds in fuzz/seeds/ from the unit tests' tables, then copies every
# seed (tables and real-* traffic from capture_seeds.py) into fuzz/corpus/, where
# `cargo fuzz run` starts. Run from anywhere; see docs/RELIABILITY.md.
set -eu
fuzz=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The tests save every table input under $CGIGATE_FUZZ_SEEDS/<target>/ (src/fuzz_seeds.rs).
(cd "$fuzz/.." && CGIGATE_FUZZ_SEEDS="$tmp" cargo test --quiet --lib -- \
    http::head:: http::decode:: cgi::header:: cgi::script:: router:: >/dev/null)

for dir in "$tmp"/*/; do
    target=$(basename "$dir")
    mkdir -p "$fuzz/seeds/$target"
    find "$fuzz/seeds/$target" -name 'table-*' -delete
    for f in "$dir"*; do
        out="$fuzz/seeds/$target/table-$(basename "$f")"
        if [ "$target" = chunked ]; then
            # The chunked target reads its options from a first byte; 0 = the body whole.
            { printf '\000'; cat "$f"; } >"$out"
        else
            cp "$f" "$out"
        fi
    done
done

for dir in "$fuzz"/seeds/*/; do
    target=$(basename "$dir")
    mkdir -p "$fuzz/corpus/$target"
    cp "$dir"* "$fuzz/corpus/$target/"
done
for target in head chunked cgi_header path_mapping cgi_env; do
    printf '%-13s %4d seeds\n' "$target" "$(ls "$fuzz/seeds/$target" 2>/dev/null | wc -l)"
done

#!/usr/bin/env bash
# layers.sh - the structure of the tree: layers that only point down, the
# house style (.clang-format), short functions and files.
#
#   lib/ <- backends/ <- daemon/;  lib/ <- cli/;  lib/ <- helpers/
#
# Each check has a positive control: the probe is shown to catch a planted
# violation before its silence on the tree counts.
. "$(dirname "$0")/../lib/tap.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || t_die "no repo at $ROOT"
T=$(mktemp -d /tmp/ballast-layers.XXXXXX)
t_at_exit rm -rf "$T"

declare -A ALLOWED=(
	[lib]="lib"
	[backends]="backends lib"
	[daemon]="daemon backends lib"
	[cli]="cli lib"
	[helpers]="helpers lib"
)
LAYERS="lib backends daemon cli helpers"
SOURCES=$(for l in $LAYERS; do ls "$l"/*.[ch]; done)
[ -n "$SOURCES" ] || t_die "no sources found under $LAYERS"

# --- includes that climb out of a folder ----------------------------------
climbs() { grep -rn --include='*.c' --include='*.h' '#include "[^"]*\.\./' "$@" || true; }
mkdir -p "$T/plant"
printf '#include "../lib/log.h"\n' >"$T/plant/x.c"
t_ne "control: a climbing include is seen" "" "$(climbs "$T/plant")"
t_eq "no #include climbs out of its folder (../)" "" "$(climbs lib daemon backends cli helpers tests bench)"

# --- each layer includes only its own headers and those below -------------
# layer_violations LAYER FILE...: "file: header" for each header of ours
# (found in some layer) that is not in one of the layer's allowed folders.
layer_violations() {
	local layer=$1 f h d ok ours
	shift
	for f in "$@"; do
		for h in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
			ok=0 ours=0
			for d in $LAYERS; do
				[ -e "$d/$h" ] && ours=1
			done
			for d in ${ALLOWED[$layer]}; do
				[ -e "$d/$h" ] && ok=1
			done
			[ "$ours" -eq 1 ] && [ "$ok" -eq 0 ] && echo "$f: $h"
		done
	done
	return 0
}
printf '#include "api.h"\n' >"$T/plant/up.c"
t_ne "control: a backend including a daemon header is seen" "" "$(layer_violations backends "$T/plant/up.c")"
for l in $LAYERS; do
	t_eq "$l/ includes only ${ALLOWED[$l]// /, }" "" "$(layer_violations "$l" "$l"/*.[ch])"
done

# --- the house style: .clang-format ---------------------------------------
command -v clang-format >/dev/null || t_die "clang-format not installed (run tests/deps.sh)"
printf 'int  f( void ){return 0;}\n' >"$T/plant/ugly.c"
cp .clang-format "$T/plant/"
t_fail "control: clang-format flags a misformatted file" clang-format --dry-run --Werror "$T/plant/ugly.c"
# shellcheck disable=SC2086 # word list
t_ok "every source obeys .clang-format (make format fixes it)" \
	clang-format --dry-run --Werror $SOURCES tests/unit/*.[ch] tests/fuzz/*.c

# --- short functions and files --------------------------------------------
{
	printf 'static int f(void)\n{\n'
	for i in $(seq 90); do printf '\tx();\n'; done
	printf '}\n'
} >"$T/plant/long.c"
t_ne "control: funclen sees a 90-line function" "" "$(python3 tests/tools/funclen.py "$T/plant/long.c")"
# shellcheck disable=SC2086 # word list
t_eq "no function over 80 lines without a Long: reason" "" \
	"$(python3 tests/tools/funclen.py $(ls $SOURCES | grep '\.c$'))"
big=$(wc -l $SOURCES | awk '$2 != "total" && $1 > 1000 { print $2 " (" $1 " lines)" }')
t_eq "no source file over 1,000 lines" "" "$big"
t_match "control: wc counts lines here" '^[0-9]+' "$(wc -l lib/errors.c)"

# --- the mutants still apply (tests/mutants.sh, run by hand) --------------
sed 's/LOOP_SET_DIRECT_IO, 1UL/LOOP_SET_DIRECT_IO, 7UL/' tests/mutants.sh >"$T/plant/mutants.sh"
t_match "control: a mutant whose text the code no longer has is reported" 'NOT APPLIED - loop-buffered-io' \
	"$(MUTANTS_APPLY_ONLY=1 MUTANTS_ROOT="$PWD" bash "$T/plant/mutants.sh")"
t_ok "every mutant of tests/mutants.sh still matches the code it breaks" \
	env MUTANTS_APPLY_ONLY=1 bash tests/mutants.sh

#!/usr/bin/env bash
# tests/integration/bad_requests.sh - malformed and hostile requests sent
# straight to ballastd's socket. Every one must be answered with HTTP 200 and
# a JSON body whose Err is a non-empty single line, and none may change the
# catalog or the state directory. No dockerd needed.
# shellcheck source-path=SCRIPTDIR
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/tap.sh
. "$HERE/../lib/tap.sh"
# shellcheck source=../lib/ballastd.sh
. "$HERE/../lib/ballastd.sh"

t_group bad_requests

for c in jq curl; do
	command -v "$c" >/dev/null || t_die "$c not installed (run tests/deps.sh)"
done

T=$(mktemp -d /tmp/ballast-br.XXXXXX)
BD=$T/b

cleanup() {
	ballastd_kill9
	if [ "$TAP_FAIL" -eq 0 ] && ! grep -qF "$T" /proc/mounts; then
		rm -rf "$T"
	else
		printf '# test directory kept: %s\n' "$T"
		if [ -f "$BD/ballastd.log" ]; then
			printf '# last lines of the ballastd log:\n'
			ballastd_log_tail 40
		fi
	fi
}
t_at_exit cleanup

SECONDS=0
ballastd_start "$BD" || t_die "ballastd did not start"

# ---------------------------------------------------------------- helpers
# body_file CONTENT: write CONTENT (printf %s, no newline) to a new file,
# print its path (unique even when called in $(...))
body_file() {
	local f
	f=$(mktemp "$T/body.XXXXXX")
	printf '%s' "$1" >"$f"
	echo "$f"
}

# check_err_reply DESC CODE BODYFILE: 200 + JSON object + non-empty,
# single-line Err
check_err_reply() {
	local desc=$1 code=$2 out=$3 err
	if [ "$code" != 200 ]; then
		t_failed "$desc" "HTTP status $code (expected 200)" "body: $(head -c 300 "$out" 2>/dev/null)"
		return 1
	fi
	if ! jq -e 'type == "object" and (.Err | type) == "string"' "$out" >/dev/null 2>&1; then
		t_failed "$desc" "body is not a JSON object with a string Err" "body: $(head -c 300 "$out")"
		return 1
	fi
	err=$(jq -r '.Err' "$out")
	if [ -z "$err" ]; then
		t_failed "$desc" "Err is empty: the request was accepted" "body: $(head -c 300 "$out")"
		return 1
	fi
	if [ "$(jq -r '.Err' "$out" | wc -l)" -ne 1 ] || [[ $err == *$'\r'* ]]; then
		t_failed "$desc" "Err is not a single line" "Err: $err"
		return 1
	fi
	t_pass "$desc"
	t_diag "Err: $err"
}

# expect_err DESC METHOD BODYFILE [CLASS]: an error reply; with CLASS (an
# ERE) its Err must also say that kind of error.
expect_err() {
	local desc=$1 method=$2 body=$3 class=${4:-} code rc=0 err
	code=$(ballast_post "$method" "$body" "$T/out") || rc=$?
	if [ "$rc" -ne 0 ]; then
		t_failed "$desc" "curl failed with status $rc (HTTP $code)"
		return 1
	fi
	check_err_reply "$desc" "$code" "$T/out" || return 1
	if [ -n "$class" ]; then
		err=$(jq -r '.Err' "$T/out")
		t_match "$desc: the error says /$class/" "$class" "$err"
	fi
}

catalog() { ballast_cli ls --json | jq -S .; }
mount_list() { awk -v d="$T" 'index($2, d) == 1 { print $1, $2, $3 }' /proc/mounts | sort; }
state_list() { find "$BD" -path "$BD/ballastd.log" -prune -o -print | sort; }

HEX64=$(printf '%064d' 0 | tr 0 a)
NAME129=$(printf 'a%.0s' $(seq 129))
NAME128=$(printf 'b%.0s' $(seq 128))

# ------------------------------------------------- a valid volume and a limit
body=$(body_file '{"Name":"exists1","Opts":{}}')
code=$(ballast_post VolumeDriver.Create "$body" "$T/out")
t_eq "create exists1 (valid) answers 200" 200 "$code"
t_eq "create exists1 (valid) has an empty Err" "" "$(err_of Create <"$T/out")"
body=$(body_file "{\"Name\":\"$NAME128\"}")
ballast_post VolumeDriver.Create "$body" "$T/out" >/dev/null
t_eq "a 128-character name is accepted" "" "$(err_of Create <"$T/out")"
ballast_post VolumeDriver.Remove "$body" "$T/out" >/dev/null
t_eq "the 128-character volume is removed" "" "$(err_of Create <"$T/out")"

cat_before=$(catalog 2>&1)
state_before=$(state_list)
mounts_before=$(mount_list)
t_eq "catalog holds exactly exists1" "exists1" "$(jq -r '.[].name' <<<"$cat_before" 2>&1)"

# ------------------------------------------------------------ the table
# METHOD|DESCRIPTION|BODY|CLASS   (BODY given to printf %s, no trailing
# newline; CLASS an ERE the Err must match, the kind of error)
while IFS='|' read -r method desc body class; do
	[ -z "$method" ] && continue
	expect_err "$method: $desc" "$method" "$(body_file "$body")" "$class"
done <<EOF
VolumeDriver.Create|bad JSON|{"Name":|invalid JSON
VolumeDriver.Create|JSON array instead of object|["v"]|must be a JSON object
VolumeDriver.Create|empty body||body is empty
VolumeDriver.Create|missing Name|{"Opts":{}}|no Name
VolumeDriver.Create|Name null|{"Name":null}|Name must be a string
VolumeDriver.Create|Name a number|{"Name":42}|Name must be a string
VolumeDriver.Create|empty name|{"Name":""}|name is empty
VolumeDriver.Create|name with a slash|{"Name":"a/b"}|invalid volume name
VolumeDriver.Create|name ..|{"Name":".."}|invalid volume name
VolumeDriver.Create|name .|{"Name":"."}|invalid volume name
VolumeDriver.Create|name ../escape|{"Name":"../escape"}|invalid volume name
VolumeDriver.Create|name ../../escape|{"Name":"../../escape"}|invalid volume name
VolumeDriver.Create|name with a NUL escape|{"Name":"a\u0000b"}|invalid JSON
VolumeDriver.Create|name of 129 characters|{"Name":"$NAME129"}|129 characters
VolumeDriver.Create|unknown option foo=bar|{"Name":"okname","Opts":{"foo":"bar"}}|unknown option "foo".*valid options
VolumeDriver.Create|size=0|{"Name":"okname","Opts":{"size":"0"}}|is zero
VolumeDriver.Create|size=-1|{"Name":"okname","Opts":{"size":"-1"}}|invalid size
VolumeDriver.Create|size=10Q|{"Name":"okname","Opts":{"size":"10Q"}}|invalid size
VolumeDriver.Create|size=1e30|{"Name":"okname","Opts":{"size":"1e30"}}|invalid size
VolumeDriver.Create|non-string option value|{"Name":"okname","Opts":{"size":64}}|must be a string
VolumeDriver.Create|Opts a string|{"Name":"okname","Opts":"size=1G"}|Opts must be an object
VolumeDriver.Unmount|unknown ID on an existing volume|{"Name":"exists1","ID":"$HEX64"}|no mount with ID
VolumeDriver.Mount|unknown volume|{"Name":"nosuchvol","ID":"$HEX64"}|not found
VolumeDriver.Mount|name ../escape|{"Name":"../escape","ID":"$HEX64"}|invalid volume name
VolumeDriver.Mount|bad JSON|{"Name":"exists1","ID":|invalid JSON
VolumeDriver.Unmount|unknown volume|{"Name":"nosuchvol","ID":"$HEX64"}|not found
VolumeDriver.Get|unknown volume|{"Name":"nosuchvol"}|not found
VolumeDriver.Get|name ../escape|{"Name":"../escape"}|invalid volume name
VolumeDriver.Path|unknown volume|{"Name":"nosuchvol"}|not found
VolumeDriver.Remove|name with a slash|{"Name":"a/b"}|invalid volume name
VolumeDriver.Remove|missing Name|{}|no Name
VolumeDriver.Frobnicate|unknown endpoint|{}|unknown endpoint
nonsense|unknown path|{}|unknown endpoint
VolumeDriver.Create|duplicate keys|{"Name":"okname","Name":"other"}|invalid JSON
VolumeDriver.Create|Name an array|{"Name":["a"]}|Name must be a string
VolumeDriver.Create|Name an object|{"Name":{"x":1}}|Name must be a string
VolumeDriver.Create|name with a space|{"Name":"a b"}|invalid volume name
VolumeDriver.Create|name starting with -|{"Name":"-rf"}|must start with a letter or digit
VolumeDriver.Create|name starting with .|{"Name":".hidden"}|must start with a letter or digit
VolumeDriver.Create|unicode name|{"Name":"v\u00e9"}|invalid volume name
VolumeDriver.Create|name with a newline|{"Name":"a\nb"}|invalid volume name
VolumeDriver.Create|absolute path as name|{"Name":"/etc/passwd"}|invalid volume name
VolumeDriver.Create|option injection mount-options|{"Name":"okname","Opts":{"mount-options":"rw,exec;rm -rf /"}}|invalid mount-options "rw,exec;rm -rf /"
VolumeDriver.Create|option injection mkfs-options|{"Name":"okname","Opts":{"size":"1G","mkfs-options":"-m 1;reboot"}}|invalid mkfs-options
VolumeDriver.Create|mount-options of a plain directory|{"Name":"okname","Opts":{"mount-options":"noatime"}}|option mount-options needs option size
VolumeDriver.Create|option injection in size|{"Name":"okname","Opts":{"size":"1G;reboot"}}|invalid size
VolumeDriver.Create|size with a fraction|{"Name":"okname","Opts":{"size":"1.5G"}}|invalid size
VolumeDriver.Create|size overflowing 64 bits|{"Name":"okname","Opts":{"size":"99999999999999999999"}}|too large
VolumeDriver.Create|size too small for ext4|{"Name":"okname","Opts":{"size":"1M"}}|too small
VolumeDriver.Create|fstype btrfs|{"Name":"okname","Opts":{"size":"1G","fstype":"btrfs"}}|invalid fstype
VolumeDriver.Create|fstype without size|{"Name":"okname","Opts":{"fstype":"xfs"}}|needs option size
VolumeDriver.Create|uid not a number|{"Name":"okname","Opts":{"uid":"root"}}|invalid uid
VolumeDriver.Create|gid negative|{"Name":"okname","Opts":{"gid":"-5"}}|invalid gid
VolumeDriver.Create|mode not octal|{"Name":"okname","Opts":{"mode":"0999"}}|invalid mode
VolumeDriver.Create|unknown backend|{"Name":"okname","Opts":{"backend":"nfs"}}|unknown backend
VolumeDriver.Create|backend not a string|{"Name":"okname","Opts":{"backend":1}}|must be a string
VolumeDriver.Create|Opts an array|{"Name":"okname","Opts":["size=1G"]}|Opts must be an object
VolumeDriver.Mount|missing ID|{"Name":"exists1"}|no ID
VolumeDriver.Mount|ID a number|{"Name":"exists1","ID":7}|ID must be a string
VolumeDriver.Mount|empty ID|{"Name":"exists1","ID":""}|mount ID
VolumeDriver.Mount|ID with a space|{"Name":"exists1","ID":"a b"}|mount ID
VolumeDriver.Unmount|missing ID|{"Name":"exists1"}|no ID
VolumeDriver.Path|missing Name|{}|no Name
VolumeDriver.Capabilities|bad JSON|{|invalid JSON
Ballast.Inspect|unknown volume|{"Name":"nosuchvol"}|not found
Ballast.Resize|a plain directory cannot grow|{"Name":"exists1","Size":"1G"}|no size to grow
Ballast.Resize|bad size|{"Name":"exists1","Size":"lots"}|invalid size
Ballast.Release|unknown volume|{"Name":"nosuchvol"}|not found
Ballast.Release|Force not a boolean|{"Name":"exists1","Force":"yes"}|Force must be true or false
Ballast.Release|a local volume has no holders|{"Name":"exists1","Force":true}|has no holders to release
Ballast.Release|traversal in the name|{"Name":"../etc"}|invalid
Ballast.Snapshot|unknown volume|{"Name":"nosuchvol","Snapshot":"s1"}|not found
Ballast.Snapshot|missing Snapshot|{"Name":"exists1"}|Snapshot
Ballast.Snapshot|Snapshot a number|{"Name":"exists1","Snapshot":3}|Snapshot must be a string
Ballast.Snapshot|snapshot name with a slash|{"Name":"exists1","Snapshot":"a/b"}|invalid snapshot name "a/b"
Ballast.Snapshot|snapshot name starting with -|{"Name":"exists1","Snapshot":"-x"}|invalid snapshot name
Ballast.SnapshotRemove|a snapshot the volume does not have|{"Name":"exists1","Snapshot":"s1"}|volume exists1 has no snapshot s1
VolumeDriver.Create|a copy of an unknown volume|{"Name":"okname","Opts":{"from":"nosuchvol"}}|from=nosuchvol: volume nosuchvol not found
VolumeDriver.Create|a copy of a snapshot that does not exist|{"Name":"okname","Opts":{"from":"exists1@s1"}}|volume exists1 has no snapshot s1
VolumeDriver.Create|a copy from a bad name|{"Name":"okname","Opts":{"from":"../x"}}|invalid volume or snapshot name
VolumeDriver.Create|a copy of itself|{"Name":"okname","Opts":{"from":"okname"}}|cannot be copied from itself
VolumeDriver.Create|a copy with a size|{"Name":"okname","Opts":{"from":"exists1","size":"1G"}}|size cannot be given with from=
Ballast.SnapshotRemove|unknown volume|{"Name":"nosuchvol","Snapshot":"s1"}|not found
Ballast.Rollback|traversal in the snapshot name|{"Name":"exists1","Snapshot":"../x"}|invalid snapshot name
Ballast.Rollback|a snapshot the volume does not have|{"Name":"exists1","Snapshot":"s1"}|volume exists1 has no snapshot s1
EOF

# a raw NUL byte inside a JSON string (not valid JSON)
printf '{"Name":"a\0b"}' >"$T/body.nul"
expect_err "VolumeDriver.Create: raw NUL byte in the body" VolumeDriver.Create "$T/body.nul"

# Bodies over 64 KiB: ballastd reads no further and answers 200 with an Err
# (HTTP 413, or closing the connection, would also be legal for dockerd,
# but this is what ballastd does, so it is what is asserted).
big_body() { # SIZE: a Create whose body is exactly SIZE bytes
	local pad=$(($1 - 34))
	printf '{"Name":"bigbody","Opts":{"p":"'
	head -c "$pad" /dev/zero | tr '\0' x
	printf '"}}'
}
for size in 65537 $((1024 * 1024)); do
	big_body "$size" >"$T/body.big"
	if [ "$(stat -c %s "$T/body.big")" -ne "$size" ]; then
		t_failed "body of $size bytes" "test bug: body is $(stat -c %s "$T/body.big") bytes"
		continue
	fi
	expect_err "VolumeDriver.Create: body of $size bytes refused" VolumeDriver.Create "$T/body.big"
done
# exactly 64 KiB is read and parsed: refused for its unknown option only
big_body 65536 >"$T/body.big"
expect_err "VolumeDriver.Create: body of 65536 bytes is parsed" VolumeDriver.Create "$T/body.big"
t_match "... and refused for its option, not its size" 'option' "$(err_of Create <"$T/out")"

t_ok "ballastd still alive after the bad requests" ballastd_running
t_eq "catalog unchanged" "$cat_before" "$(catalog 2>&1)"
t_eq "state directory unchanged" "$state_before" "$(state_list)"
t_eq "mount table unchanged" "$mounts_before" "$(mount_list)"
t_fail "nothing escaped the state dir" test -e "$T/escape"
t_fail "nothing escaped the state dir (2)" test -e "$BD/escape"

# ---------------------------- Unmount of an unknown ID on a mounted volume
body=$(body_file "{\"Name\":\"exists1\",\"ID\":\"$(printf '%064d' 1)\"}")
code=$(ballast_post VolumeDriver.Mount "$body" "$T/out")
t_eq "mount exists1 with ID 1 answers 200" 200 "$code"
mp=$(jq -r '.Mountpoint // ""' "$T/out" 2>&1)
t_match "mount exists1 returns a mountpoint" '^/' "$mp"
t_ok "the mountpoint is a directory" test -d "$mp"
cat_mounted=$(catalog 2>&1)
state_mounted=$(state_list)
t_eq "exists1 mount_count is 1" 1 "$(jq -r '.[0].mount_count' <<<"$cat_mounted" 2>&1)"
expect_err "VolumeDriver.Unmount: unknown ID on a mounted volume" VolumeDriver.Unmount \
	"$(body_file "{\"Name\":\"exists1\",\"ID\":\"$HEX64\"}")"
expect_err "VolumeDriver.Remove: volume in use" VolumeDriver.Remove \
	"$(body_file '{"Name":"exists1"}')"
t_eq "catalog unchanged (mounted)" "$cat_mounted" "$(catalog 2>&1)"
t_eq "state directory unchanged (mounted)" "$state_mounted" "$(state_list)"
code=$(ballast_post VolumeDriver.Unmount "$body" "$T/out")
t_eq "unmount exists1 with ID 1 succeeds" "200:" "$code:$(err_of Unmount <"$T/out")"
t_eq "exists1 mount_count is 0" 0 \
	"$(ballast_cli inspect --json exists1 2>&1 | jq -r .mount_count 2>&1)"
expect_err "VolumeDriver.Unmount: the same ID again (count would go below 0)" \
	VolumeDriver.Unmount "$body"
t_eq "catalog back to the first state" "$cat_before" "$(catalog 2>&1)"

t_ok "ballastd stops on SIGTERM and removes its socket" ballastd_stop
t_diag "took $SECONDS s"

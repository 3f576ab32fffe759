# shellcheck shell=bash
# tests/lib/secrets.sh - no secret of a config reaches a log.
#
#   secrets_of CONF        print the secret values CONF holds or names, one
#                          per line: the value of a key named *key, *secret*,
#                          *password*, *token*, and each `key = ...` line of a
#                          keyring file CONF names (keyring, keyfile). Values
#                          shorter than 8 characters are ignored.
#   leaks_of CONF FILE...  print "FILE holds the value of a secret (N
#                          characters)" for each secret of CONF found in FILE
#   check_no_secret_in_logs CONF LOG...   assert (tap.sh) that CONF has a
#                          secret to look for and no LOG holds one

secrets_of() {
	local conf=$1 f
	awk -F'=' '
		/^[[:space:]]*[;#]/ { next }
		NF >= 2 {
			k = $1; gsub(/[[:space:]]/, "", k); v = substr($0, index($0, "=") + 1)
			gsub(/^[[:space:]]+|[[:space:]]+$/, "", v)
			if (tolower(k) ~ /(^|_)key$|secret|password|passwd|token/ && length(v) >= 8) print v
		}' "$conf"
	while IFS= read -r f; do
		[ -r "$f" ] || continue
		awk -F'=' 'tolower($1) ~ /^[[:space:]]*key[[:space:]]*$/ {
			v = substr($0, index($0, "=") + 1); gsub(/^[[:space:]]+|[[:space:]]+$/, "", v)
			if (length(v) >= 8) print v }' "$f"
	done < <(awk -F'=' 'tolower($1) ~ /keyring|keyfile/ {
		v = substr($0, index($0, "=") + 1); gsub(/^[[:space:]]+|[[:space:]]+$/, "", v); print v }' "$conf")
}

leaks_of() {
	local conf=$1 k f
	shift
	while IFS= read -r k; do
		for f in "$@"; do
			grep -qF -- "$k" "$f" 2>/dev/null && printf '%s holds the value of a secret (%d characters)\n' "$f" "${#k}"
		done
	done < <(secrets_of "$conf")
}

check_no_secret_in_logs() {
	local conf=$1 n
	shift
	n=$(secrets_of "$conf" | wc -l)
	if [ "$n" -eq 0 ]; then
		t_failed "check_no_secret_in_logs: no secret found in $conf to look for"
		return 1
	fi
	t_eq "no secret of $(basename "$conf") in $# log(s) ($n secret(s) looked for)" "" "$(leaks_of "$conf" "$@")"
}

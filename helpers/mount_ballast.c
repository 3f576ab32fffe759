/*
 * mount_ballast.c - mount.ballast, the only code in ballast that formats,
 * mounts, unmounts and grows filesystems, and maps RBD images to devices.
 *
 *   mount.ballast [--state-dir DIR] mkfs --fstype ext4|xfs [--mkfs-options OPTS] [--label L] SOURCE
 *   mount.ballast [--state-dir DIR] mount --fstype ext4|xfs|glusterfs [--options OPTS] [--loop] SOURCE TARGET
 *   mount.ballast [--state-dir DIR] umount TARGET
 *   mount.ballast [--state-dir DIR] grow --fstype ext4|xfs TARGET
 *   mount.ballast [--state-dir DIR] status TARGET
 *   mount.ballast [--state-dir DIR] freeze [--timeout S] TARGET
 *   mount.ballast map --mapper krbd|nbd --pool POOL --image IMAGE --id USER [--conf PATH]
 *                     [--keyring PATH] [--read-only] [--ms-mode MODE] [--timeout S]
 *   mount.ballast unmap --mapper krbd|nbd [--timeout S] DEVICE
 *   mount.ballast mappers
 *
 * ballastd runs it by fork/exec with an argv (never through a shell) and
 * reads back the exit status and, on failure, the one line written to
 * stderr, which becomes the error the user sees. Keeping these operations
 * in a short-lived process keeps libmount, libblkid and the mkfs tools out
 * of the daemon's threads, and keeps everything that can destroy data or
 * change the mount table in one program that can be audited on its own:
 * every input is checked against a whitelist before anything is touched.
 * This file holds main; mount_ballast.h says where the rest is.
 *
 * Exit status:
 *   0  success; nothing on stderr (status, map and mappers print their
 *      answer on stdout)
 *   1  bad usage, or input refused by a check (option, path, fstype)
 *   2  the operation itself failed (the tool's or the kernel's message)
 *   3  mkfs refused: SOURCE already holds a filesystem or other signature
 * On failure stderr holds exactly one line: "mount.ballast: <reason>".
 */
#include <stdio.h>
#include <string.h>

#include "mount_ballast.h"

/*
 * Sanitize, parse, run one command; on failure print the one error line
 * and exit with its status (see the top of this file).
 */
int main(int argc, char **argv)
{
	char why[MB_MSG_MAX];
	struct cmdline cl;
	int rc;

	rc = sanitize_process();
	if (rc) {
		fprintf(stderr, PROG ": cannot set up the process: %s\n", strerror(-rc));
		return EXIT_FAILED;
	}
	rc = parse_cmdline(argc, argv, &cl, why, sizeof(why));
	if (rc)
		return report_failure(NULL, refuse(rc, why));
	if (cl.help) {
		print_usage(stdout);
		return EXIT_OK;
	}
	rc = cl.cmd->run(&cl);
	if (!rc)
		return EXIT_OK;
	return report_failure(cl.cmd->name, rc);
}

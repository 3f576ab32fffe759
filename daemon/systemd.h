/*
 * systemd.h - the two systemd protocols ballastd speaks: socket activation
 * (sd_listen_fds(3)) and the readiness notification (sd_notify(3)). Both
 * are stable, documented interfaces that systemd invites programs to speak
 * without libsystemd; linking it (and through it libgcrypt, liblzma,
 * libzstd, liblz4, libcap) cost a sixth of the idle daemon's memory.
 */
#ifndef BALLAST_SYSTEMD_H
#define BALLAST_SYSTEMD_H

/* The first socket systemd passes */
#define SYSTEMD_LISTEN_FDS_START 3

/* How many sockets systemd passed to this process (LISTEN_FDS, when
 * LISTEN_PID is ours), from SYSTEMD_LISTEN_FDS_START on, each made
 * close-on-exec; 0 when none, -EINVAL when the variables are malformed.
 * The variables are removed, so that children do not see them. */
int systemd_listen_fds(void);

/* Send state ("READY=1", "STOPPING=1") to the service manager when it
 * asked for it (NOTIFY_SOCKET: a path, or "@" and an abstract name).
 * 0 when sent or not asked for; -errno when it could not be sent. */
int systemd_notify(const char *state);

#endif

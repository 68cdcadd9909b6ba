#include "sd_notify.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int shr_sd_notify(const char *message) {
  const char *path = getenv("NOTIFY_SOCKET");
  if (!path || !*path) return 0;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  size_t len = strlen(path);
  if (len >= sizeof addr.sun_path || (path[0] != '/' && path[0] != '@')) return -1;
  memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  socklen_t addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
  ssize_t sent = sendto(fd, message, strlen(message), MSG_NOSIGNAL, (struct sockaddr *)&addr, addrlen);
  close(fd);
  return sent < 0 ? -1 : 0;
}

uint64_t shr_sd_watchdog_ms(void) {
  const char *usec = getenv("WATCHDOG_USEC");
  if (!usec || !*usec) return 0;
  const char *pid = getenv("WATCHDOG_PID");
  if (pid && *pid && strtol(pid, NULL, 10) != (long)getpid()) return 0;
  unsigned long long us = strtoull(usec, NULL, 10);
  return us / 1000ULL;
}

/* transport_test: the slot protocol and the client library against a fake service in a
 * second process, over a real Unix socket, memfd and eventfd.
 *
 *   transport_test <socket-path>
 *
 * First the service functions alone (one process), then fork: the parent plays the
 * service (fake_service.c), the child the client (client_*.c). Prints a summary; the
 * exit status is 0 only if both processes passed every check. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

atomic_int g_checks, g_failures;
const char *g_role = "service";

static int listen_on(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return -1;
    strcpy(addr.sun_path, path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0)
        return -1;
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <socket-path>\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IONBF, 0);
    run_service_unit_tests();
    printf("service unit checks: %d, failures: %d\n", atomic_load(&g_checks), atomic_load(&g_failures));

    int listen_fd = listen_on(argv[1]);
    int canned[2];
    if (listen_fd < 0 || pipe(canned) != 0) {
        perror("setup");
        return 2;
    }
    pid_t child = fork();
    if (child == 0) {
        g_role = "client";
        atomic_store(&g_checks, 0);
        atomic_store(&g_failures, 0);
        close(listen_fd);
        close(canned[0]);
        run_client(argv[1], canned[1]);
        printf("client checks: %d, failures: %d\n", atomic_load(&g_checks), atomic_load(&g_failures));
        _exit(atomic_load(&g_failures) ? 1 : 0);
    }
    close(canned[1]);
    fcntl(canned[0], F_SETFL, O_NONBLOCK);
    /* If the child dies early, accept() would wait forever: a hard limit for the whole run. */
    alarm(300);
    run_service(listen_fd, canned[0], child);
    int status;
    waitpid(child, &status, 0);
    unlink(argv[1]);
    printf("service checks: %d, failures: %d\n", atomic_load(&g_checks), atomic_load(&g_failures));
    int ok = atomic_load(&g_failures) == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    printf("%s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}

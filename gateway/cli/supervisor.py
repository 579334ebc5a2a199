"""The supervisor of ``gateway serve --workers N``: uvicorn's, with a listening socket per worker.

uvicorn's own binds one socket that every worker accepts from: the first worker awake takes
all the connections waiting, so a client that opens its keep-alive connections at once (a load
balancer's pool, wrk) could put 61 of its 64 on one worker and leave the other idle
(bench/workers.py: 3/61, 13/51 and 51/13 in 12 starts). Here each worker slot has a socket
of its own, all bound to the address with ``SO_REUSEPORT``, and the kernel spreads new
connections over them by a hash of the client's address and port. The supervisor keeps every
slot's socket open, so a connection that arrives while a slot's worker restarts waits in the
socket's backlog for the next one instead of being reset with a socket the worker had bound.

uvicorn is pinned (pyproject.toml): the methods below are its own with ``Process(config,
sockets)`` replaced by a slot's socket.
"""

from __future__ import annotations

import logging
import socket

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

__all__ = ["Supervisor"]

log = logging.getLogger("uvicorn.error")


class Supervisor(Multiprocess):
    def __init__(self, config: Config) -> None:
        super().__init__(config, sockets=[])
        self._free_check(config)
        self._slots: list[socket.socket] = []
        self._port = config.port  # the one the first slot got, when 0 asked for any
        self._socket(0)
        scheme = "https" if config.is_ssl else "http"
        host = f"[{config.host}]" if ":" in config.host else config.host
        log.info("Uvicorn running on %s://%s:%d (Press CTRL+C to quit)", scheme, host, self._port)

    @staticmethod
    def _free_check(config: Config) -> None:
        """Fail as uvicorn does when the address is taken: a socket bound with SO_REUSEPORT
        would otherwise share the port with whatever process of this user holds it."""
        with socket.socket(_family(config.host)) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((config.host, config.port))
            except OSError as exc:
                log.error(exc)
                raise SystemExit(STARTUP_FAILURE) from None

    def _socket(self, slot: int) -> socket.socket:
        """The listening socket of worker slot ``slot``, bound on first use."""
        while len(self._slots) <= slot:
            sock = socket.socket(_family(self.config.host))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                sock.bind((self.config.host, self._port))
            except OSError as exc:
                log.error(exc)
                raise SystemExit(STARTUP_FAILURE) from None
            self._port = sock.getsockname()[1]
            sock.listen(self.config.backlog)  # in the group (and queueing) before its worker is up
            sock.set_inheritable(True)
            self._slots.append(sock)
        return self._slots[slot]

    def _start(self, slot: int) -> Process:
        process = Process(self.config, [self._socket(slot)])
        process.start()
        return process

    def init_processes(self) -> None:
        self.processes = [self._start(slot) for slot in range(self.processes_num)]

    def restart_all(self) -> None:
        """uvicorn's: each slot's new worker serves before the old one is retired."""
        for slot, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._start(slot)
            timeout = self.config.timeout_worker_healthcheck
            if not new.wait_until_ready(timeout, self.should_exit):
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    log.error(
                        "New child process [%s] was not ready in time; keeping worker [%s] and "
                        "aborting the restart.",
                        new.pid,
                        old.pid,
                    )
                return
            old.terminate()
            old.join()
            self.processes[slot] = new

    def keep_subprocess_alive(self) -> None:
        """uvicorn's: a worker that died or hangs is replaced on its slot; one that could not
        start stops the supervisor (every worker would fail the same way).

        Each worker's ping pipe is a socket pair whose worker end the supervisor also kept
        open after spawning it (the worker has its own copy): a worker that exited with a
        ping unanswered (its app could not be built, it was killed) left the supervisor
        waiting out the whole health-check bound, and ``serve`` exited 2 some 20 s late.
        With the supervisor's copy closed, the worker's exit ends the wait on EOF."""
        for process in self.processes:  # idempotent; new workers' before their first ping
            process.child_conn.close()
        if self.should_exit.is_set():
            return
        for slot, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                log.error(
                    "Child process [%s] failed to start, stopping the parent process.", process.pid
                )
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            log.info("Child process [%s] died", process.pid)
            self.processes[slot] = self._start(slot)

    def handle_ttin(self) -> None:
        log.info("Received SIGTTIN, increasing the number of processes.")
        self.processes_num += 1
        self.processes.append(self._start(len(self.processes)))

    def handle_ttou(self) -> None:
        """uvicorn's, and the retired slot's socket closed: the kernel would go on handing it
        connections that no worker accepts."""
        log.info("Received SIGTTOU, decreasing number of processes.")
        if self.processes_num <= 1:
            log.info(
                "Already reached one process, cannot decrease the number of processes anymore."
            )
            return
        self.processes_num -= 1
        process = self.processes.pop()
        process.terminate()
        process.join()
        self._slots.pop().close()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET

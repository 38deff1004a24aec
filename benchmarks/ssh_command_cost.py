#!/usr/bin/env python3
"""What one board command costs the lab host's CPU: today's transport against one long-lived channel.

    tests/lab/lab up --copies 16
    EDGEPROF_INVENTORY=... .venv/bin/python benchmarks/ssh_command_cost.py [--device sim-tx2-08] [-n 200] [--blocks 3]

Issue 18's host CPU per item is mostly SSH commands (benchmarks/lab_parallel.py --parts), and paramiko handles
about eleven SSH messages for each: the channel's open and confirmation, the exec request and its reply, data,
EOF, exit status, and two closes. This times, in interleaved blocks over one connection:
- a channel per command: SSHTransport.run(["true"]), as every board command runs today;
- one shell channel for all: `true; echo MARK $?` written to a `sh` started once, read back up to the mark,
  the least a long-lived channel per board could cost (no stderr, timeout or process-group handling yet).
It prints this process's CPU (user + system) and the wall time per command for each. Not a design of that
transport: a measure of what it could save, to weigh against building it.
"""
import argparse
import resource
import time

from edgeprof.devices import connect, get_device

MARK = b"edgeprof-command-done"


def cpu_s() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="sim-tx2-08", help="a lab board (default: a copy CI's lab tests rarely use)")
    p.add_argument("-n", type=int, default=200, help="commands per block and way")
    p.add_argument("--blocks", type=int, default=3, help="interleaved blocks of each way")
    args = p.parse_args()
    transport = connect(get_device(args.device))   # from $EDGEPROF_INVENTORY
    # The connection's paramiko client: the long-lived channel is opened on it beside SSHTransport's own.
    shell = transport._client.get_transport().open_session()
    shell.exec_command("sh")

    def through_the_shell() -> None:
        shell.sendall(b"true; echo " + MARK + b" $?\n")
        answer = b""
        while MARK not in answer:
            answer += shell.recv(65536)

    ways = {"a channel per command": lambda: transport.run(["true"]), "one shell channel": through_the_shell}
    try:
        for block in range(1, args.blocks + 1):
            figures = []
            for name, command in ways.items():
                cpu, wall = cpu_s(), time.monotonic()
                for _ in range(args.n):
                    command()
                figures.append(f"{name} {(cpu_s() - cpu) / args.n * 1000:.3f} ms CPU "
                               f"({(time.monotonic() - wall) / args.n * 1000:.2f} ms wall)")
            print(f"block {block} ({args.n} commands each): " + "; ".join(figures), flush=True)
    finally:
        shell.close()
        transport.close()


if __name__ == "__main__":
    main()

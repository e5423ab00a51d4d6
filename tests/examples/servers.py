#!/usr/bin/env python3
"""Drives the example servers as a user would: start, wait for `listening on H:N`, talk to it
over loopback, stop it with SIGTERM and expect a clean exit (status 0) within a few seconds.

  servers.py echo ECHO_SERVER_BINARY [CONNECTIONS=10000]
  servers.py chat CHAT_ROOM_BINARY
"""
import asyncio
import resource
import signal
import socket
import subprocess
import sys
import time


def start(binary):
    p = subprocess.Popen([binary, "--port", "0"], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    if not line.startswith("listening on "):
        p.kill()
        sys.exit(f"unexpected first line: {line!r}")
    host, port = line[len("listening on "):].rsplit(":", 1)
    return p, host, int(port)


def stop(p):
    t = time.time()
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        sys.exit("the server did not stop within 20 s of SIGTERM")
    print(f"stopped in {time.time() - t:.2f} s with status {rc}")
    if rc != 0:
        sys.exit(f"exit status {rc}")


async def echo_clients(host, port, n, rounds):
    opened = asyncio.Event()
    count = 0
    conns = []

    async def one(i):
        nonlocal count
        for attempt in range(50):
            try:
                r, w = await asyncio.open_connection(host, port)
                break
            except OSError:
                await asyncio.sleep(0.05 * (attempt + 1))
        else:
            raise RuntimeError(f"connection {i} could not connect")
        conns.append(w)
        count += 1
        if count == n:
            opened.set()
        await opened.wait()  # every connection is open at once before echoing
        for k in range(rounds):
            msg = f"{i}:{k};".encode()
            w.write(msg)
            await w.drain()
            if await r.readexactly(len(msg)) != msg:
                raise RuntimeError(f"connection {i} got other bytes back")
        return True

    sem = asyncio.Semaphore(1000)  # connect in waves; all stay open

    async def guarded(i):
        async with sem:
            pass
        return await one(i)

    results = await asyncio.wait_for(
        asyncio.gather(*[guarded(i) for i in range(n)], return_exceptions=True), 120)
    for w in conns:
        w.close()
    errors = [r for r in results if r is not True]
    return n - len(errors), errors[:3]


def echo(binary, n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    n = min(n, (hard - 100) // 2)  # the client needs one descriptor per connection too
    p, host, port = start(binary)
    try:
        ok, errors = asyncio.run(echo_clients(host, port, n, 3))
    except BaseException:
        p.kill()
        raise
    print(f"{ok} of {n} concurrent connections echoed correctly")
    stop(p)
    if ok != n:
        sys.exit(f"failures: {errors}")


def recv_until(s, text, timeout=5):
    s.settimeout(timeout)
    data = b""
    while text.encode() not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    if text.encode() not in data:
        sys.exit(f"expected {text!r}, got {data!r}")
    return data


def chat(binary):
    p, host, port = start(binary)
    try:
        a = socket.create_connection((host, port))
        b = socket.create_connection((host, port))
        recv_until(a, "name? ")
        recv_until(b, "name? ")
        a.sendall(b"alice\n")
        recv_until(a, "* 1 here")
        b.sendall(b"bob\r\n")
        recv_until(a, "* bob joined")
        a.sendall(b"hello bob\nand more\n")
        recv_until(b, "alice: and more")
        b.close()
        recv_until(a, "* bob left")
        a.close()
        print("chat: join, broadcast and leave seen")
    except BaseException:
        p.kill()
        raise
    stop(p)


if __name__ == "__main__":
    if sys.argv[1] == "echo":
        echo(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 10000)
    else:
        chat(sys.argv[2])

#!/usr/bin/env python3
"""Receives a container's pty master over a --console-socket (Node cannot receive SCM_RIGHTS).

usage: console-receiver.py SOCKET OUTFILE [--on MARKER] [--winsize ROWS COLS] [--send TEXT]

Binds a unix stream socket at SOCKET and prints "listening" on stdout. Accepts one connection,
receives one fd with SCM_RIGHTS (the pty master) and prints "got-fd". Everything read from the
master is appended to OUTFILE until the slave side hangs up (EIO), then it prints "done" and exits 0.
With --on, once MARKER has appeared in the output it sets the window size (--winsize) and/or
writes TEXT (--send, with "\\n" turned into a newline) to the master.
"""
import array
import fcntl
import os
import socket
import struct
import sys
import termios


def main() -> int:
    args = sys.argv[1:]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    sock_path, out_path = args[0], args[1]
    marker = winsize = send = None
    i = 2
    while i < len(args):
        if args[i] == '--on':
            marker = args[i + 1].encode(); i += 2
        elif args[i] == '--winsize':
            winsize = (int(args[i + 1]), int(args[i + 2])); i += 3
        elif args[i] == '--send':
            send = args[i + 1].replace('\\n', '\n').encode(); i += 2
        else:
            print(f'unknown argument {args[i]}', file=sys.stderr)
            return 2

    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    print('listening', flush=True)
    conn, _ = srv.accept()
    fds = array.array('i')
    _msg, ancdata, _flags, _addr = conn.recvmsg(4096, socket.CMSG_SPACE(4 * fds.itemsize))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    conn.close()
    srv.close()
    if not fds:
        print('no fd received', file=sys.stderr)
        return 1
    master = fds[0]
    for extra in fds[1:]:
        os.close(extra)
    print('got-fd', flush=True)

    seen = b''
    acted = marker is None
    with open(out_path, 'ab') as out:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the slave side is closed
                break
            if not chunk:
                break
            out.write(chunk)
            out.flush()
            seen += chunk
            if not acted and marker in seen:
                acted = True
                if winsize:
                    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack('HHHH', winsize[0], winsize[1], 0, 0))
                if send:
                    os.write(master, send)
    os.close(master)
    print('done', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())

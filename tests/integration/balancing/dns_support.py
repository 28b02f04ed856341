"""A real DNS server for the tests: UDP on 127.0.0.1, answering from a zone the test edits.

`zone[(name, type)]` holds the records of a name: "A"/"AAAA" addresses as strings, "SRV"
records as (priority, weight, port, target). A name with no record of the asked type but
some other answers NOERROR with no records (NODATA); a name with none at all NXDOMAIN. SRV
answers carry the targets' A records in the additional section unless `srv_glue` is off.
Every question is logged as (name, type) in `asked`.
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import Any

TYPES = {"A": 1, "AAAA": 28, "SRV": 33}
NAMES = {v: k for k, v in TYPES.items()}


def _name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p for p in name.encode().split(b".")) + b"\0"


class DNSServer:
    def __init__(self, ttl: int = 60) -> None:
        self.zone: dict[tuple[str, str], list[Any]] = {}
        self.ttl = ttl
        self.srv_glue = True
        self.asked: list[tuple[str, str]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.address = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._serve, name="dns", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                return
            try:
                self.sock.sendto(self.answer(data), peer)
            except OSError:
                return

    def _rr(self, name: str, rtype: str, value: Any) -> bytes:
        if rtype == "A":
            rdata = socket.inet_pton(socket.AF_INET, value)
        elif rtype == "AAAA":
            rdata = socket.inet_pton(socket.AF_INET6, value)
        else:
            prio, weight, port, target = value
            rdata = struct.pack("!HHH", prio, weight, port) + _name(target)
        return (_name(name) + struct.pack("!HHIH", TYPES[rtype], 1, self.ttl, len(rdata))
                + rdata)

    def answer(self, query: bytes) -> bytes:
        qid = struct.unpack_from("!H", query)[0]
        labels, i = [], 12
        while query[i]:
            labels.append(query[i + 1:i + 1 + query[i]].decode())
            i += query[i] + 1
        qtype = struct.unpack_from("!H", query, i + 1)[0]
        question = query[12:i + 5]
        name, rtype = ".".join(labels).lower(), NAMES.get(qtype, str(qtype))
        self.asked.append((name, rtype))
        records = self.zone.get((name, rtype), [])
        exists = any(n == name for n, _ in self.zone)
        answers = [self._rr(name, rtype, r) for r in records]
        extra: list[bytes] = []
        if rtype == "SRV" and self.srv_glue:
            for r in records:
                extra += [self._rr(r[3], "A", ip) for ip in self.zone.get((r[3], "A"), [])]
        rcode = 0 if exists else 3
        head = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, len(answers), 0, len(extra))
        return head + question + b"".join(answers) + b"".join(extra)

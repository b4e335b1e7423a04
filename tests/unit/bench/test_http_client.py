"""The bench's lean HTTP/1.1 client against a tiny local server (no timing assertions)."""

from __future__ import annotations

import asyncio

import pytest

from summit.bench.http import HttpClient, HttpError, multipart, parse_head


def test_parse_head() -> None:
    status, headers = parse_head(b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2")
    assert status == 201
    assert headers["content-length"] == "5" and headers["set-cookie"] == "a=1, b=2"
    with pytest.raises(HttpError):
        parse_head(b"garbage")


def test_multipart_body() -> None:
    body, ctype = multipart({"caption": "hi"}, {"photo": ("p.jpg", b"\xff\xd8data", "image/jpeg")})
    boundary = ctype.split("boundary=")[1]
    assert body.startswith(f"--{boundary}\r\n".encode()) and body.endswith(f"--{boundary}--\r\n".encode())
    assert b'name="photo"; filename="p.jpg"' in body and b"\xff\xd8data" in body


async def _serve(handler):  # noqa: ANN001, ANN202
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    length = 0
    for line in head.split("\r\n"):
        if line.lower().startswith("content-length:"):
            length = int(line.split(":")[1])
    body = await reader.readexactly(length) if length else b""
    return head, body


def test_keep_alive_lengths_and_chunks() -> None:
    connections = 0

    async def handler(reader, writer):  # noqa: ANN001, ANN202
        nonlocal connections
        connections += 1
        try:
            for _ in range(100):
                head, body = await _read_request(reader)
                path = head.split(" ")[1]
                if path == "/chunked":
                    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                elif path == "/echo":
                    writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                elif path == "/close":
                    writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbye")
                    await writer.drain()
                    writer.close()
                    return
                else:
                    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server, port = await _serve(handler)
        async with server:
            async with HttpClient("127.0.0.1", port, max_connections=1) as client:
                r = await client.request("GET", "/chunked")
                assert (r.status, r.body) == (200, b"abcde")
                big = b"x" * 200_000
                r = await client.request("POST", "/echo", body=big)
                assert (r.status, r.body) == (201, big)
                r = await client.request("GET", "/none")
                assert (r.status, r.body) == (204, b"")
                assert connections == 1  # one connection, kept alive
                r = await client.request("GET", "/close")
                assert r.body == b"bye"
                r = await client.request("GET", "/none")
                assert r.status == 204 and connections == 2

    asyncio.run(asyncio.wait_for(main(), 20))


def test_a_server_that_hangs_up_is_an_error() -> None:
    async def handler(reader, writer):  # noqa: ANN001, ANN202
        await _read_request(reader)
        writer.close()

    async def main() -> None:
        server, port = await _serve(handler)
        async with server:
            async with HttpClient("127.0.0.1", port) as client:
                with pytest.raises(HttpError):
                    await client.request("GET", "/")

    asyncio.run(asyncio.wait_for(main(), 20))


def test_a_kept_alive_connection_the_server_closed_is_replaced_once() -> None:
    """A server that closes each connection after one answer without saying so (its idle timeout,
    as HAProxy's keep-alive timeout does): the next request on the kept connection goes once more
    on a new one; a new connection that closes unanswered is an error."""
    connections = 0

    async def one_answer(reader, writer):  # noqa: ANN001, ANN202
        nonlocal connections
        connections += 1
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def never_answers(reader, writer):  # noqa: ANN001, ANN202
        writer.close()

    async def go() -> None:
        server, port = await _serve(one_answer)
        async with server:
            client = HttpClient("127.0.0.1", port, max_connections=1, timeout=5)
            for _ in range(3):
                response = await client.request("POST", "/upload", body=b"x" * 200_000)
                assert response.status == 200 and response.body == b"ok"
                await asyncio.sleep(0.05)  # the server has closed the kept connection by now
            await client.close()
        assert connections == 3
        server, port = await _serve(never_answers)
        async with server:
            client = HttpClient("127.0.0.1", port, max_connections=1, timeout=5)
            with pytest.raises(HttpError, match="closed the connection before answering"):
                await client.request("GET", "/")
            await client.close()

    asyncio.run(go())

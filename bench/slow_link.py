#!/usr/bin/env python3
"""A throttled TCP link to a broker: the "slow broker" of bench/lean.sh (issue 21).

    slow_link.py --listen PORT --to HOST:PORT --rate BYTES_PER_S

Every connection accepted on 127.0.0.1:PORT is relayed to HOST:PORT, each direction at
most BYTES_PER_S (read a chunk of at most 1/20 of the rate, forward it, sleep for its
share of the second). So the broker's acknowledgements come back no faster than a link of
that speed carries the station's messages there: the station produces faster than the
broker acknowledges and its backlog grows. Stops on SIGTERM.
"""

import argparse
import asyncio
import signal


async def pump(reader, writer, rate):
    chunk = max(1, rate // 20)
    loop = asyncio.get_running_loop()
    try:
        while True:
            t = loop.time()
            data = await reader.read(chunk)
            if not data:
                break
            writer.write(data)
            await writer.drain()
            wait = len(data) / rate - (loop.time() - t)
            if wait > 0:
                await asyncio.sleep(wait)
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except (ConnectionError, OSError):
            pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--to", required=True)
    ap.add_argument("--rate", type=int, required=True)
    a = ap.parse_args()
    host, port = a.to.rsplit(":", 1)

    async def handle(cr, cw):
        try:
            br, bw = await asyncio.open_connection(host, int(port))
        except OSError:
            cw.close()
            return
        await asyncio.gather(pump(cr, bw, a.rate), pump(br, cw, a.rate))

    server = await asyncio.start_server(handle, "127.0.0.1", a.listen)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())

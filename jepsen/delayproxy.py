#!/usr/bin/python3
"""A small delaying TCP proxy: every chunk read from either side is written
to the other `delay` (+- jitter) milliseconds later, in order. Stands in for
tc netem, which this kernel lacks. Prints "ready" once listening.

    delayproxy.py --listen 0.0.0.0:27001 --to 10.77.0.11:7001 --delay-ms 100 --jitter-ms 20
"""
import argparse
import asyncio
import random
import signal
import sys


async def pump(reader, writer, delay, jitter, rng):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def deliver():
        while True:
            at, data = await queue.get()
            wait = at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                try:
                    writer.write_eof()
                except (OSError, RuntimeError):
                    pass
                return
            writer.write(data)
            await writer.drain()

    task = asyncio.create_task(deliver())
    last = 0.0
    try:
        while True:
            data = await reader.read(65536)
            at = max(last, loop.time() + max(0.0, delay + rng.uniform(-jitter, jitter)))
            last = at
            await queue.put((at, data or None))
            if not data:
                break
        await task
    except (OSError, asyncio.CancelledError):
        task.cancel()
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main(args):
    host, port = args.listen.rsplit(":", 1)
    to_host, to_port = args.to.rsplit(":", 1)
    delay, jitter = args.delay_ms / 1000.0, args.jitter_ms / 1000.0
    rng = random.Random(args.seed)

    async def handle(creader, cwriter):
        try:
            ureader, uwriter = await asyncio.open_connection(to_host, int(to_port))
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(pump(creader, uwriter, delay, jitter, rng),
                             pump(ureader, cwriter, delay, jitter, rng), return_exceptions=True)

    server = await asyncio.start_server(handle, host, int(port), reuse_address=True)
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", required=True)
    ap.add_argument("--to", required=True)
    ap.add_argument("--delay-ms", type=float, default=100)
    ap.add_argument("--jitter-ms", type=float, default=0)
    ap.add_argument("--seed", type=int, default=None)
    sys.exit(asyncio.run(main(ap.parse_args())))

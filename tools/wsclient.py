"""A one-line WebSocket client for trying lb by hand.

    python tools/wsclient.py ws://127.0.0.1:8080/chat hello whoami

Connects (keeping any cookie given with --cookie), sends each message, prints each
answer, and prints the Set-Cookie the proxy added to the 101, if any.
"""

from __future__ import annotations

import argparse
import sys

from websockets.sync.client import connect


def main() -> int:
    ap = argparse.ArgumentParser(description="send messages over a WebSocket, print answers")
    ap.add_argument("url")
    ap.add_argument("messages", nargs="*", default=["hello"])
    ap.add_argument("--cookie", help="Cookie header to send (e.g. SRV=s1)")
    ap.add_argument("--timeout", type=float, default=5.0)
    args = ap.parse_args()
    headers = {"Cookie": args.cookie} if args.cookie else None
    try:
        with connect(args.url, additional_headers=headers, open_timeout=args.timeout) as ws:
            resp = ws.response
            if resp is not None:
                cookie = resp.headers.get("set-cookie")
                if cookie:
                    print(f"set-cookie: {cookie}")
            for msg in args.messages:
                ws.send(msg)
                print(ws.recv(timeout=args.timeout))
    except (OSError, TimeoutError) as exc:
        print(f"wsclient: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # websockets raises its own hierarchy; say it plainly
        print(f"wsclient: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

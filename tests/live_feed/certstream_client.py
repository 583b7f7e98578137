"""Connect the real certstream client (PyPI `certstream`) to URL and print what it received as JSON.

Usage: certstream_client.py URL COUNT. Prints "OPEN" once connected, then one JSON line with the first COUNT
certificate_update messages' (cert_index, all_domains, tbs_sha256, verified, update_type, source url), and exits.
"""
import json
import os
import sys

import certstream

url, want = sys.argv[1], int(sys.argv[2])
got = []


def on_open():
    print("OPEN", flush=True)


def on_message(message, _context):
    if message.get("message_type") != "certificate_update":
        return
    d = message["data"]
    got.append({
        "cert_index": d["cert_index"],
        "all_domains": d["leaf_cert"]["all_domains"],
        "tbs_sha256": d["tbs_sha256"],
        "verified": d["verified"],
        "update_type": d["update_type"],
        "source_url": d["source"]["url"],
        "has_der": bool(d["leaf_cert"].get("as_der")),
    })
    if len(got) >= want:
        print(json.dumps(got), flush=True)
        os._exit(0)


def on_error(ex):
    print("ERROR " + str(ex), file=sys.stderr, flush=True)


certstream.listen_for_events(on_message, url=url, on_open=on_open, on_error=on_error, setup_logger=False)

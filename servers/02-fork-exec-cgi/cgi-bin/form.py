#!/usr/bin/env python3
"""A classic CGI form handler: GET shows the form, POST reads CONTENT_LENGTH bytes of
application/x-www-form-urlencoded data from stdin and echoes the fields back, escaped."""

import html
import os
import sys
from urllib.parse import parse_qsl

FORM = """<form method="post" action="{action}">
<label>Name <input name="name"></label> <label>Colour <input name="colour"></label>
<button>Send</button></form>"""


def main():
    method = os.environ.get("REQUEST_METHOD", "GET")
    action = html.escape(os.environ.get("SCRIPT_NAME", ""))
    if method == "GET":
        reply("200 OK", f"<!doctype html><title>Form</title>{FORM.format(action=action)}")
        return
    if method != "POST":
        reply("405 Method Not Allowed", "<p>GET or POST only.</p>", extra="Allow: GET, POST\r\n")
        return
    ctype = os.environ.get("CONTENT_TYPE", "")
    if not ctype.startswith("application/x-www-form-urlencoded"):
        reply("415 Unsupported Media Type", "<p>Send application/x-www-form-urlencoded.</p>")
        return
    length = int(os.environ.get("CONTENT_LENGTH") or 0)
    data = sys.stdin.buffer.read(length).decode("utf-8", "replace")
    fields = parse_qsl(data, keep_blank_values=True)
    rows = "".join(f"<li>{html.escape(k)} = {html.escape(v)}</li>" for k, v in fields)
    reply("200 OK", f"<!doctype html><title>Thanks</title><p>Received {len(fields)} fields:</p><ul>{rows}</ul>")


def reply(status, body, extra=""):
    sys.stdout.write(f"Status: {status}\r\nContent-Type: text/html; charset=utf-8\r\n{extra}\r\n{body}\n")


main()

"""A real SMTP server for the email channel tests (aiosmtpd).

Listens on 127.0.0.1 on three ports the kernel picks:

- starttls: plain text that must be upgraded (require_starttls), then
  AUTH PLAIN or LOGIN as --user/--password (auth_required);
- implicit: TLS from the first byte, then the same login;
- plain: no STARTTLS offered and no login, so a client that requires
  STARTTLS has something real to refuse.

Recipients named by --reject are refused with 550 at RCPT TO; the first
--fail-first messages are answered 451 (try again later) after DATA. Every
message received is saved, with the reply it got, as <out>/<n>.json (envelope, the listener, whether it came
over TLS, the login, the raw message and its decoded subject, Message-ID,
plain-text and HTML parts), written whole and then renamed, so a reader never
sees half a file. Once listening it prints one JSON line with the ports and
then serves until killed.

Usage: server.py --cert CERT --key KEY --user U --password P --out DIR
                 [--reject ADDRESS]... [--fail-first N]
"""

import argparse
import asyncio
import email
import email.policy
import itertools
import json
import os
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Recorder:
    """Saves what it accepts; refuses the --reject recipients."""

    def __init__(self, listener, out, reject, counter, failures):
        self.listener = listener
        self.out = out
        self.reject = {address.lower() for address in reject}
        self.counter = counter
        # Shared by the listeners: [how many more to answer 451].
        self.failures = failures

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        if self.failures[0] > 0:
            self.failures[0] -= 1
            reply = "451 4.3.0 Temporary failure, try again later"
        else:
            reply = f"250 2.0.0 Ok: queued as {self.listener}-{n:06d}"
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode()
        parsed = email.message_from_bytes(raw, policy=email.policy.default)

        def part(kind):
            body = parsed.get_body(preferencelist=(kind,))
            return body.get_content() if body is not None else None

        auth = session.auth_data
        record = {
            "listener": self.listener,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "login": auth.login.decode() if isinstance(auth, LoginPassword) else None,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "subject": str(parsed["subject"] or ""),
            "message_id": str(parsed["message-id"] or ""),
            "from": str(parsed["from"] or ""),
            "to": str(parsed["to"] or ""),
            "text": part("plain"),
            "html": part("html"),
            "raw": raw.decode("utf-8", "replace"),
            "received_at": time.time(),
            "reply": reply,
        }
        path = os.path.join(self.out, f"{n:06d}.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return reply


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return check


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--reject", action="append", default=[])
    parser.add_argument("--fail-first", type=int, default=0)
    args = parser.parse_args()

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    counter = itertools.count(1)
    failures = [args.fail_first]
    loop = asyncio.get_running_loop()
    check = authenticator(args.user, args.password)

    def factory(listener, **kwargs):
        handler = Recorder(listener, args.out, args.reject, counter, failures)
        return lambda: SMTP(handler, hostname="smtp.test", ident="monitor test SMTP", **kwargs)

    servers = {
        "starttls": await loop.create_server(
            factory(
                "starttls",
                tls_context=context,
                require_starttls=True,
                authenticator=check,
                auth_required=True,
            ),
            "127.0.0.1",
            0,
        ),
        # The socket is TLS already, which aiosmtpd's auth_require_tls does
        # not see: it only counts STARTTLS.
        "implicit": await loop.create_server(
            factory("implicit", authenticator=check, auth_required=True, auth_require_tls=False),
            "127.0.0.1",
            0,
            ssl=context,
        ),
        "plain": await loop.create_server(factory("plain"), "127.0.0.1", 0),
    }
    ports = {name: server.sockets[0].getsockname()[1] for name, server in servers.items()}
    print(json.dumps({"ready": ports}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)

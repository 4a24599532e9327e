"""A real broker for the tests: Debian's mosquitto on a free loopback port, and a paho subscriber."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as paho


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class Mosquitto:
    """mosquitto with persistence in `root`; `extra` lines go into the listener's config."""

    def __init__(self, root: Path, extra: str = "") -> None:
        assert shutil.which("mosquitto"), "mosquitto is missing: apt-get install mosquitto"
        self.root, self.port = root, free_port()
        self.conf = root / "mosquitto.conf"
        self.log = root / "mosquitto.log"
        self.proc: subprocess.Popen | None = None
        self.configure(extra)

    def configure(self, extra: str) -> None:
        user = "user root\n" if os.geteuid() == 0 else ""  # as root, mosquitto would drop to a user that cannot write here
        self.conf.write_text(f"{user}listener {self.port} 127.0.0.1\npersistence true\n"
                             f"persistence_location {self.root}/\nlog_dest file {self.log}\nlog_type all\n"
                             f"{extra}\n" + ("" if "allow_anonymous" in extra else "allow_anonymous true\n"))

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # mosquitto saves its sessions and retained messages on SIGTERM
            self.proc.wait(timeout=10)
        self.proc = None

    def reload(self) -> None:
        self.proc.send_signal(signal.SIGHUP)


class Subscriber:
    """Records every message on `topic` (QoS 1, a persistent session, so a broker restart loses nothing)."""

    def __init__(self, port: int, topic: str = "#", **tls) -> None:
        self.messages: list[tuple[float, str, bytes, bool]] = []
        self._lock = threading.Condition()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}",
                                  clean_session=False)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.wait(lambda: self.client.is_connected(), 10, "subscriber connected")

    def _on_message(self, _client, _userdata, message) -> None:
        with self._lock:
            self.messages.append((time.time(), message.topic, message.payload, bool(message.retain)))
            self._lock.notify_all()

    def wait(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        with self._lock:
            while not (result := predicate()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}; got "
                                         f"{[(t, p[:60]) for _, t, p, _ in self.messages]}")
                self._lock.wait(min(left, 0.1))
        return result

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for _, t, p, _ in self.messages if t == topic]

    def events(self, topic: str) -> list[dict]:
        return [json.loads(p) for p in self.on(topic)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def make_tls(root: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1: (ca.pem, server.pem, server.key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(subject, issuer, key, signer, *, ca: bool, san=None):
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("soundsentry test CA", "soundsentry test CA", ca_key, ca_key, ca=True)
    server = cert("127.0.0.1", "soundsentry test CA", server_key, ca_key, ca=False,
                  san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    paths = root / "ca.pem", root / "server.pem", root / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return paths

"""Evidence through object storage the admin configures (S3 protocol), instead of the controller's receiver.

When the inventory has an ``artifact_store:`` section, workers ``PUT`` each envelope (gzip-compressed) as
one object, ``<prefix><run id>/<host>/<delivery>/<collector id>.json.gz``, and return only its key, size and the
SHA-256 of the uncompressed body with the host's result. The controller ``GET``s each object when the
host's result arrives, checks that SHA-256 (the digest travelled with the result, not with the object,
so a damaged or replaced object is caught), and writes the envelope through the run directory writer like
any other. Objects are deleted once written unless ``keep: true``.

```yaml
artifact_store:
  url: https://s3.eu-west-1.amazonaws.com   # any S3-protocol endpoint (AWS, MinIO, Ceph RGW, ...)
  bucket: iisfleet-evidence
  region: eu-west-1                         # signing region (default us-east-1)
  prefix: runs/                             # key prefix (default iisfleet/)
  credential: evidence-store                # a credentials: entry: username = access key id,
                                            # password = secret key, by reference ({env: ...}, keyring, prompt)
  addressing: path                          # path (https://host/bucket/key, default) or virtual (bucket.host)
  ca_bundle: /etc/pki/corp-ca.pem           # for a private CA
  keep: false                               # keep the objects after the run directory has them
```

The client is a small AWS Signature Version 4 signer over ``urllib`` (no SDK needed). The secret never
leaves the process that resolved it: task messages carry neither it nor the store's settings.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import hmac
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from toolkit.errors import HostError, InventoryError
from toolkit.inventory.credentials import CredentialRef

KEYS = {"url", "bucket", "region", "prefix", "credential", "addressing", "ca_bundle", "keep", "timeout"}
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class ArtifactStoreConfig:
    url: str
    bucket: str
    credential: CredentialRef
    region: str = "us-east-1"
    prefix: str = "iisfleet/"
    addressing: Literal["path", "virtual"] = "path"
    ca_bundle: str | None = None
    keep: bool = False
    timeout: float = 60.0


def parse_artifact_store(section: Any, *, path: str, line: int | None,
                         credential_ref: Callable[[Any, str], CredentialRef],
                         key_line: Callable[[str], int | None]) -> ArtifactStoreConfig:
    """The inventory's ``artifact_store:`` mapping, validated (errors name the file and line)."""

    def problem(message: str, key: str | None = None) -> InventoryError:
        where = (key_line(key) if key else None) or line
        return InventoryError(f"artifact_store{'.' + key if key else ''}: {message}", path=path, line=where)

    if not isinstance(section, Mapping):
        raise problem("expected a mapping with url, bucket and credential")
    unknown = sorted(str(k) for k in section if k not in KEYS)
    if unknown:
        raise problem(f"unknown key {unknown[0]!r} (expected one of {', '.join(sorted(KEYS))})", unknown[0])
    for key in ("url", "bucket", "credential"):
        if not isinstance(section.get(key), str) or not section[key].strip():
            raise problem("required (text)", key)
    url = section["url"].strip().rstrip("/")
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path not in ("", "/"):
        raise problem(f"{url!r} is not an endpoint URL like https://s3.eu-west-1.amazonaws.com", "url")
    addressing = section.get("addressing", "path")
    if addressing not in ("path", "virtual"):
        raise problem("expected path or virtual", "addressing")
    keep = section.get("keep", False)
    if not isinstance(keep, bool):
        raise problem("expected true or false", "keep")
    timeout = section.get("timeout", 60)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise problem("expected a number of seconds", "timeout")
    text = {}
    for key, default in (("region", "us-east-1"), ("prefix", "iisfleet/"), ("ca_bundle", None)):
        value = section.get(key, default)
        if value is not None and not isinstance(value, str):
            raise problem("expected text", key)
        text[key] = value
    return ArtifactStoreConfig(url=url, bucket=section["bucket"].strip(),
                               credential=credential_ref(section["credential"], "credential"),
                               region=text["region"], prefix=text["prefix"], addressing=addressing,
                               ca_bundle=text["ca_bundle"], keep=keep, timeout=float(timeout))


def object_key(prefix: str, run_id: str, host: str, delivery: int, collector: str) -> str:
    """One key per delivery of a host: a redelivered host never overwrites the objects whose digests the
    first delivery's result reported."""
    return f"{prefix}{run_id}/{host}/{delivery}/{collector}.json.gz"


class StoreError(Exception):
    """An object could not be stored, fetched or verified (the message names the object, never a secret)."""


class ObjectStore:
    """PUT/GET/DELETE of single objects on an S3-protocol endpoint, signed with AWS Signature Version 4."""

    def __init__(self, config: ArtifactStoreConfig, access_key: str, secret_key: str) -> None:
        self.config = config
        self._access_key = access_key
        self._secret_key = secret_key
        self._context = ssl.create_default_context(cafile=config.ca_bundle) if config.url.startswith("https:") else None

    @classmethod
    def from_config(cls, config: ArtifactStoreConfig, resolve: Callable[[CredentialRef], Any]) -> ObjectStore:
        """Resolve the store's credential reference here (worker or controller), never in a message."""
        credential = resolve(config.credential)
        if not credential.username or credential.password is None:
            raise InventoryError(f"artifact_store: credential {config.credential.name!r} needs a username (the "
                                 "access key id) and a password (the secret key)", path=config.credential.path,
                                 line=config.credential.line)
        return cls(config, credential.username, credential.password.reveal())

    # ------------------------------------------------------------------ objects
    def put(self, key: str, body: bytes, content_type: str = "application/gzip") -> None:
        self._request("PUT", key, body, {"Content-Type": content_type})

    def get(self, key: str) -> bytes:
        return self._request("GET", key)

    def delete(self, key: str) -> None:
        self._request("DELETE", key)

    def where(self, key: str) -> str:
        return f"{self.config.url}/{self.config.bucket}/{key}"

    # ------------------------------------------------------------------ signing
    def _target(self, key: str) -> tuple[str, str]:
        """(URL, host header) for path-style or virtual-hosted addressing."""
        endpoint = urllib.parse.urlsplit(self.config.url)
        quoted_key = urllib.parse.quote(key, safe="/-_.~")
        if self.config.addressing == "virtual":
            host = f"{self.config.bucket}.{endpoint.netloc}"
            path = f"/{quoted_key}"
        else:
            host = endpoint.netloc
            path = f"/{urllib.parse.quote(self.config.bucket, safe='-_.~')}/{quoted_key}"
        return f"{endpoint.scheme}://{host}{path}", host

    def _signed_headers(self, method: str, url: str, host: str, body: bytes, extra: dict[str, str],
                        now: dt.datetime) -> dict[str, str]:
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        payload_hash = hashlib.sha256(body).hexdigest() if body else _EMPTY_SHA256
        headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": stamp,
                   **{k.lower(): v.strip() for k, v in extra.items()}}
        names = sorted(headers)
        canonical = "\n".join([method, urllib.parse.urlsplit(url).path, "",
                               "".join(f"{name}:{headers[name]}\n" for name in names), ";".join(names), payload_hash])
        scope = f"{day}/{self.config.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = f"AWS4{self._secret_key}".encode()
        for part in (day, self.config.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={self._access_key}/{scope}, "
                                    f"SignedHeaders={';'.join(names)}, Signature={signature}")
        del headers["host"]  # urllib sends it from the URL
        return headers

    def _request(self, method: str, key: str, body: bytes = b"", extra: dict[str, str] | None = None) -> bytes:
        url, host = self._target(key)
        headers = self._signed_headers(method, url, host, body, extra or {}, dt.datetime.now(dt.timezone.utc))
        request = urllib.request.Request(url, data=body if method == "PUT" else None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout, context=self._context) as response:  # noqa: S310
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode("utf-8", "replace")
            code = _xml_text(detail, "Code") or detail[:120]
            raise StoreError(f"{method} {self.where(key)}: HTTP {exc.code} {code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise StoreError(f"{method} {self.where(key)}: {getattr(exc, 'reason', exc)}") from None


def _xml_text(document: str, tag: str) -> str:
    start, end = document.find(f"<{tag}>"), document.find(f"</{tag}>")
    return document[start + len(tag) + 2:end] if 0 <= start < end else ""


def store_envelope(store: ObjectStore, run_id: str, host: str, delivery: int, collector: str,
                   envelope: dict[str, Any]) -> dict[str, Any]:
    """Upload one envelope (worker side); returns the reference that travels with the host's result."""
    body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    key = object_key(store.config.prefix, run_id, host, delivery, collector)
    try:
        store.put(key, gzip.compress(body, compresslevel=6))
    except StoreError as exc:
        raise HostError(f"the evidence could not be stored: {exc}", host=host, category="connect", collector=collector,
                        explanation="check the worker's artifact_store settings and that it can reach the "
                                    "store") from None
    return {"collector": collector, "key": key, "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}


def fetch_envelope(store: ObjectStore, reference: Mapping[str, Any]) -> dict[str, Any]:
    """Download one stored envelope (controller side) and check it against the SHA-256 the worker reported.

    Raises ``StoreError`` when it is missing, damaged (gzip, digest) or not one JSON object."""
    key = str(reference.get("key") or "")
    raw = store.get(key)
    try:
        body = gzip.decompress(raw)
    except (OSError, EOFError):
        raise StoreError(f"{store.where(key)}: the stored object is not intact gzip") from None
    if not hmac.compare_digest(hashlib.sha256(body).hexdigest(), str(reference.get("sha256") or "")):
        raise StoreError(f"{store.where(key)}: SHA-256 mismatch (the object differs from what the worker stored)")
    try:
        envelope = json.loads(body)
    except ValueError:
        envelope = None
    if not isinstance(envelope, dict):
        raise StoreError(f"{store.where(key)}: not a JSON object")
    return envelope


def assemble_stored(store: ObjectStore | None, writer: Any, host: str, document: dict[str, Any], references: Any,
                    collectors: Collection[str]) -> int:
    """Controller side, when a host's result arrives: fetch each envelope the worker put in the store, check
    its SHA-256 against the one the worker reported, write it like a received one (``writer.write_envelope``).
    A missing or damaged object fails its step in ``document`` (the host becomes partial or failed), so no
    unchecked evidence enters the run directory. Returns the envelope bytes written."""
    steps = {s.get("collector"): s for s in document.get("steps") or [] if isinstance(s, dict)}
    written, rejected = 0, False
    for reference in references if isinstance(references, list) else []:
        collector = reference.get("collector") if isinstance(reference, dict) else None
        if collector not in steps or collector not in collectors:
            continue  # not a step of this run: nothing of it is written
        try:
            if store is None:
                raise StoreError("the worker put it in an artifact store, but this controller's inventory has no "
                                 "artifact_store:")
            writer.write_envelope(host, collector, fetch_envelope(store, reference))
            written += int(reference.get("bytes") or 0)
            if not store.config.keep:
                store.delete(str(reference["key"]))
        except StoreError as exc:
            rejected = True
            steps[collector]["status"] = "failed"
            steps[collector]["error"] = {"category": "protocol", "message": f"stored evidence rejected: {exc}",
                                         "explanation": "the object in the artifact store is missing or differs from "
                                                        "what the worker stored; rerun the host"}
            writer.log("artifact_rejected", host=host, collector=collector, message=str(exc))
    if rejected:
        from toolkit.distributed.controller import host_result_from_document
        from toolkit.runner import _Run  # the local run's rule for a host's status from its steps

        document["status"] = _Run._host_status(host_result_from_document(document))
    return written

"""Encryption of workflow payloads before they reach Temporal.

Requests carry people's names and emails, and Temporal keeps every payload in its history for
as long as the namespace retains it; with this codec the server (and whoever reads its
database) holds only ciphertext. AES-256-GCM, one key active for encryption and any number kept
for decryption, each payload tagged with its key id: rotating is adding a key and making it
active, and old histories stay readable while their key is kept.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from common.settings import CodecSettings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
_NONCE = 12


class CodecError(Exception):
    """A payload cannot be decrypted (unknown key id, tampered or corrupt data)."""


class EncryptionCodec(PayloadCodec):
    def __init__(
        self, keys: dict[str, bytes], active_key_id: str, *, require_encryption: bool = False
    ) -> None:
        if active_key_id not in keys:
            raise ValueError(f"the active key id {active_key_id!r} is not among the keys")
        for key_id, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"key {key_id!r} must be 32 bytes (AES-256), not {len(key)}")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._active = active_key_id
        self._require = require_encryption

    @classmethod
    def from_settings(cls, settings: CodecSettings) -> EncryptionCodec | None:
        if not settings.keys:
            if settings.require_encryption:
                raise ValueError("VEND_CODEC__REQUIRE_ENCRYPTION is set but no VEND_CODEC__KEYS")
            return None
        keys: dict[str, bytes] = {}
        for key_id, secret in settings.keys.items():
            try:
                keys[key_id] = base64.b64decode(secret.get_secret_value(), validate=True)
            except binascii.Error as err:
                raise ValueError(f"codec key {key_id!r} is not base64") from err
        active = settings.active_key_id or sorted(keys)[-1]
        return cls(keys, active, require_encryption=settings.require_encryption)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(_NONCE)
        key_id = self._active.encode()
        sealed = self._ciphers[self._active].encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            if self._require:
                raise CodecError("a plaintext payload, and this deployment requires encryption")
            return payload  # written before encryption was turned on
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CodecError(f"no key with id {key_id!r} to decrypt this payload")
        nonce, sealed = payload.data[:_NONCE], payload.data[_NONCE:]
        try:
            plain = cipher.decrypt(nonce, sealed, key_id.encode())
        except InvalidTag as err:
            raise CodecError(f"payload under key {key_id!r} failed authentication") from err
        return Payload.FromString(plain)


def data_converter(settings: CodecSettings) -> DataConverter:
    """The one converter the API, the worker, tests and tools share.

    Failures are converted with their message and stack trace moved into encoded attributes, so
    a step's error (which quotes emails, names, URLs from AWS or a vendor) is encrypted in
    history like every other payload; the SDK puts them back when it reads the failure."""
    codec = EncryptionCodec.from_settings(settings)
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def new_key() -> str:
    """A fresh key, base64 (what ``vend codec-key`` prints and the embedded stack generates)."""
    return base64.b64encode(os.urandom(32)).decode()

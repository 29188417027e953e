"""Writes fresh key pairs for the Authlib lane into the folder given: rsa.pem / rsa.pub.pem
(RSA 2048, for RS256), ec.pem / ec.pub.pem (P-256, for ES256), and other-rsa.pem, a key no
client is registered with. Private keys are PKCS#8 PEM, public keys SubjectPublicKeyInfo PEM."""

import os
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def write(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def save(key, folder, name):
    write(
        os.path.join(folder, name + ".pem"),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    write(
        os.path.join(folder, name + ".pub.pem"),
        key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        ),
    )


folder = sys.argv[1]
save(rsa.generate_private_key(public_exponent=65537, key_size=2048), folder, "rsa")
save(ec.generate_private_key(ec.SECP256R1()), folder, "ec")
save(rsa.generate_private_key(public_exponent=65537, key_size=2048), folder, "other-rsa")
